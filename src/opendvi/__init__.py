"""opendvi: identification of human remains by DNA and pedigree likelihoods."""

__version__ = "0.1.0"
