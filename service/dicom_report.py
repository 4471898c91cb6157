"""The answer as DICOM: a Comprehensive SR (TID 1500 Measurement Report, made with highdicom)
that references the classified MR instance and carries the finding, for systems that store
results beside the images (PACS, VNA) rather than read JSON.

The report is coded with the standard's own terms: a measurement group whose finding type is
Tumor (SCT 108369006) in the Brain (SCT 12738006), measured from the input instance, holding
Probability (DCM 122157, no units) and the qualitative evaluation Tumor: Present (SCT 52101004)
or Absent (SCT 272519000) at the model card's threshold; the model is the observing device and
the algorithm (TID 4019: name, version, the threshold as its parameter).

Privacy: the report belongs to the input's study (same Study Instance UID) but carries no
patient data: the Patient and Study modules' type 2 attributes are present and empty, because
the upload's patient data never leaves model_contract/dicom.py. A receiving archive reconciles
the report with its study by Study Instance UID.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydicom import dcmwrite
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from model_contract.dicom import DicomIdentity
from service.errors import InvalidInput

if TYPE_CHECKING:  # imported when the first report is made: it holds ~20 MiB
    import highdicom as hd

MEDIA_TYPE = "application/dicom"
MANUFACTURER = "brain-mri-classifier"
SERIES_NUMBER = 9001  # high, as for derived series, so viewers list it after the images


class UnreferenceableInput(InvalidInput):
    """The input lacks a UID the report must reference (a broken file)."""

    reason = "unreferenceable_input"


@dataclass(frozen=True)
class Finding:
    tumor_probability: float
    label: str
    positive_class: str
    threshold: float
    model_name: str
    model_version: int


def _evidence(identity: DicomIdentity) -> Dataset:
    """The input instance as the report's evidence: its UIDs and nothing else."""
    required = {
        "SOPClassUID": identity.sop_class_uid,
        "SOPInstanceUID": identity.sop_instance_uid,
        "SeriesInstanceUID": identity.series_instance_uid,
        "StudyInstanceUID": identity.study_instance_uid,
    }
    missing = [keyword for keyword, value in required.items() if not value]
    if missing:
        raise UnreferenceableInput(
            "A DICOM report needs the input's " + ", ".join(missing) + "; the file has none."
        )
    evidence = Dataset()
    for keyword, value in required.items():
        setattr(evidence, keyword, value)
    evidence.Modality = identity.modality or "MR"
    for keyword in (
        "PatientID", "PatientName", "PatientBirthDate", "PatientSex",
        "AccessionNumber", "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName",
    ):
        setattr(evidence, keyword, "")
    return evidence


def _measurement_group(
    finding: Finding, evidence: Dataset
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    import highdicom as hd

    algorithm = hd.sr.AlgorithmIdentification(
        name=finding.model_name,
        version=str(finding.model_version),
        parameters=[f"threshold={finding.threshold}"],
    )
    present = finding.label == finding.positive_class
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=generate_uid(), identifier="brain tumor classification"
        ),
        finding_type=codes.SCT.Tumor,
        finding_sites=[hd.sr.FindingSite(anatomic_location=codes.SCT.Brain)],
        algorithm_id=algorithm,
        source_images=[
            hd.sr.SourceImageForMeasurementGroup(evidence.SOPClassUID, evidence.SOPInstanceUID)
        ],
        measurements=[
            hd.sr.Measurement(
                name=codes.DCM.Probability,
                value=finding.tumor_probability,
                unit=codes.UCUM.NoUnits,
            )
        ],
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(
                name=codes.SCT.Tumor,
                value=codes.SCT.Present if present else codes.SCT.Absent,
            )
        ],
    )


def structured_report(identity: DicomIdentity, finding: Finding) -> bytes:
    """The finding as a DICOM Part 10 Comprehensive SR referencing the input instance."""
    import highdicom as hd

    evidence = _evidence(identity)
    device = hd.sr.ObserverContext(
        observer_type=codes.cid270.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(entropy_srcs=[finding.model_name, str(finding.model_version)]),
            name=finding.model_name,
            manufacturer_name=MANUFACTURER,
            model_name=f"{finding.model_name} v{finding.model_version}",
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=device),
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=[_measurement_group(finding, evidence)],
    )
    document = hd.sr.ComprehensiveSR(
        evidence=[evidence],
        content=report,
        series_instance_uid=generate_uid(),
        series_number=SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        series_description="Brain MRI tumor classification (research aid, not a diagnosis)",
    )
    buffer = io.BytesIO()
    dcmwrite(buffer, document, enforce_file_format=True)
    return buffer.getvalue()
