"""Case exports for partner agencies, joint investigation teams and FIUs: STIX 2.1, MISP,
FollowTheMoney, goAML XML, CSV and XLSX of identifiers, with a manifest of SHA-256 hashes and
the use restrictions in every file.

    from cointrail.exports import ExportOptions, export_bundle
    bundle = export_bundle(case.snapshot(), ExportOptions(recipient="FIU NL",
                                                          legal_basis="UNCC art 40"))
    bundle.files["manifest.json"], bundle.zip_bytes(), bundle.write(out_dir)
"""

from cointrail.exports.bundle import FILE_NAMES, MANIFEST, ExportBundle, export_bundle
from cointrail.exports.goaml import load_profile, profile_names, validate_goaml
from cointrail.exports.options import FORMATS, ExportOptions, UseRestrictions, use_restrictions

__all__ = [
    "FILE_NAMES",
    "FORMATS",
    "MANIFEST",
    "ExportBundle",
    "ExportOptions",
    "UseRestrictions",
    "export_bundle",
    "load_profile",
    "profile_names",
    "use_restrictions",
    "validate_goaml",
]
