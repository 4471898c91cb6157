"""benchmarks.loop_profile: py-spy samples of the event-loop thread sorted into layers."""

from __future__ import annotations

from benchmarks.loop_profile import EVENT_LOOP, START_UP, main_thread_layers

SERVING = "thread (1): MainThread;main (service/__main__.py:71);Server.run (uvicorn/server.py:86)"


def test_samples_go_to_the_layer_of_their_deepest_frame() -> None:
    lines = [
        f"{SERVING};Runner.run (asyncio/runners.py:118) 7\n",
        f"{SERVING};run_asgi (h11_impl.py:411);Router.__call__ (starlette/routing.py:683);"
        "_get_form (starlette/requests.py:294);MultiPartParser.parse (formparsers.py:266) 3\n",
        f"{SERVING};run_asgi (h11_impl.py:411);Router.__call__ (starlette/routing.py:683) 2\n",
        f"{SERVING};H11Protocol.data_received (h11_impl.py:176) 4\n",
        "thread (1): MainThread;<module> (service/__main__.py:13);"
        "_find_and_load (<frozen importlib._bootstrap>:1176) 5\n",
        "thread (2): model-worker;MicroBatcher._run (service/batching.py:125) 9\n",
    ]
    layers = main_thread_layers(lines)
    assert layers[EVENT_LOOP] == 7 and layers[START_UP] == 5
    assert layers["multipart parsing (Starlette, python-multipart)"] == 3
    assert layers["middleware and routing"] == 2
    assert layers["HTTP parsing and writing (uvicorn's h11 protocol, h11)"] == 4
    assert sum(layers.values()) == 21  # the model worker's samples are not the loop's
