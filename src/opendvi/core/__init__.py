"""opendvi.core: markers, mutation models, pedigrees, profiles and the exact
pedigree likelihood. Imports no other opendvi package and no web, database or
CLI library."""

from opendvi.core.case import Case, Family, Sample
from opendvi.core.errors import (
    FileFormatError,
    LikelihoodError,
    MarkerError,
    MutationModelError,
    OpenDVIError,
    PedigreeError,
    ProfileError,
)
from opendvi.core.likelihood import (
    GenotypeTable,
    KinshipLR,
    LogLikelihood,
    kinship_lr,
    marker_genotype_table,
    marker_loglik,
    pedigree_loglik,
)
from opendvi.core.markers import Marker, canonical_marker_name, make_marker
from opendvi.core.mutation import MutationModel
from opendvi.core.pedigree import Individual, Pedigree
from opendvi.core.profiles import Genotype, Profile

__all__ = [
    "Case",
    "Family",
    "FileFormatError",
    "Genotype",
    "GenotypeTable",
    "Individual",
    "KinshipLR",
    "LikelihoodError",
    "LogLikelihood",
    "Marker",
    "MarkerError",
    "MutationModel",
    "MutationModelError",
    "OpenDVIError",
    "Pedigree",
    "PedigreeError",
    "Profile",
    "ProfileError",
    "Sample",
    "canonical_marker_name",
    "kinship_lr",
    "make_marker",
    "marker_genotype_table",
    "marker_loglik",
    "pedigree_loglik",
]
