"""Print the pip requirements of pyproject.toml's dependencies plus the named extras.

Used inside the image build and by .ci/container, so that the image installs exactly what
pyproject.toml declares (and not the project itself, which would drag training/ into the
serving image). Standard library only: it runs on the bare base image's python3.

    python3 docker/requirements.py pyproject.toml serve        # core + serve extra
    python3 docker/requirements.py pyproject.toml serve train  # core + both extras
"""

import sys
import tomllib


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], "rb") as handle:
        project = tomllib.load(handle)["project"]
    extras = project.get("optional-dependencies", {})
    requirements = list(project.get("dependencies", []))
    for extra in argv[2:]:
        if extra not in extras:
            print(f"unknown extra {extra!r}; known: {', '.join(sorted(extras))}", file=sys.stderr)
            return 2
        requirements += [r for r in extras[extra] if r not in requirements]
    print("\n".join(requirements))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
