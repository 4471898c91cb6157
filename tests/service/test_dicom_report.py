"""The DICOM SR answer (service/dicom_report.py): it reads back with pydicom and highdicom,
references the input instance, carries the coded finding, passes dciodvfy, and holds no PHI."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import highdicom as hd
import pytest
from dicom_files import PHI, phi_file
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import ComprehensiveSRStorage
from synthetic_slices import synthetic_slice

from model_contract.dicom import DicomIdentity, read_dicom
from service.dicom_report import Finding, UnreferenceableInput, structured_report

FINDING = Finding(0.8125, "tumor", "tumor", 0.861, "brain-tumor-cnn", 3)


@pytest.fixture(scope="module")
def source() -> DicomIdentity:
    return read_dicom(phi_file(synthetic_slice(4))).identity


def test_the_report_references_the_input_instance(source: DicomIdentity) -> None:
    ds = dcmread(io.BytesIO(structured_report(source, FINDING)))
    assert ds.SOPClassUID == ComprehensiveSRStorage and ds.Modality == "SR"
    assert ds.StudyInstanceUID == source.study_instance_uid
    assert ds.SeriesInstanceUID != source.series_instance_uid  # a new series in the same study
    evidence = ds.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.StudyInstanceUID == source.study_instance_uid
    series = evidence.ReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == source.series_instance_uid
    assert series.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.sop_instance_uid
    assert series.ReferencedSOPSequence[0].ReferencedSOPClassUID == source.sop_class_uid


@pytest.mark.parametrize(("label", "evaluation"), [("tumor", "Present"), ("healthy", "Absent")])
def test_the_finding_is_coded(source: DicomIdentity, label: str, evaluation: str) -> None:
    finding = Finding(0.25 if label == "healthy" else 0.9, label, "tumor", 0.861, "m", 3)
    report = hd.sr.srread(io.BytesIO(structured_report(source, finding)))
    (group,) = report.content.get_image_measurement_groups()
    assert group.finding_type == codes.SCT.Tumor
    assert group.source_images[0].referenced_sop_instance_uid == source.sop_instance_uid
    (probability,) = group.get_measurements(name=codes.DCM.Probability)
    assert probability.value == pytest.approx(finding.tumor_probability)
    assert probability.unit == codes.UCUM.NoUnits
    (qualitative,) = group.get_qualitative_evaluations(name=codes.SCT.Tumor)
    assert qualitative.value.meaning == evaluation
    texts = text_items(group[0])  # the template's container item
    assert texts["111001"] == ["m"] and texts["111003"] == ["3"]  # TID 4019 name, version
    assert texts["111002"] == ["threshold=0.861"]  # its parameter


def text_items(item: Dataset) -> dict[str, list[str]]:
    """Every TEXT content item under `item`, by concept name code."""
    found: dict[str, list[str]] = {}
    for child in item.get("ContentSequence", []):
        if child.ValueType == "TEXT":
            code = child.ConceptNameCodeSequence[0].CodeValue
            found.setdefault(code, []).append(str(child.TextValue))
        for code, values in text_items(child).items():
            found.setdefault(code, []).extend(values)
    return found


def test_the_report_carries_no_patient_data(source: DicomIdentity) -> None:
    data = structured_report(source, FINDING)
    for value in PHI.values():
        assert value.encode() not in data, value
    ds = dcmread(io.BytesIO(data))
    assert ds.PatientName == "" and ds.PatientID == "" and ds.PatientBirthDate == ""


def test_an_input_without_uids_cannot_be_referenced() -> None:
    identity = DicomIdentity(None, "1.2.3", "1.2.4", "MR", "1.2.840.10008.5.1.4.1.1.4")
    with pytest.raises(UnreferenceableInput, match="SOPInstanceUID"):
        structured_report(identity, FINDING)


def test_dciodvfy_finds_no_error(source: DicomIdentity, tmp_path: Path) -> None:
    """dicom3tools' validator (Debian package dicom3tools): warnings about the DICOMDIR keys it
    would need (patient ID, study date) are expected, since the report carries no patient data."""
    validator = shutil.which("dciodvfy")
    if validator is None:
        reason = "dciodvfy (Debian package dicom3tools) is not installed"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (required in CI)")
        pytest.skip(reason)
    path = tmp_path / "report.dcm"
    path.write_bytes(structured_report(source, FINDING))
    result = subprocess.run([validator, str(path)], capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    assert "ComprehensiveSR" in output
    assert "Error" not in output, output
