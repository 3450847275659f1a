"""Model builders: the SAEH network and the encoders it shares with the baselines."""

from saeh.models.encoders import ENCODERS
from saeh.models.saeh_model import build_code_network, build_saeh, hash_and_classifier

__all__ = ["ENCODERS", "build_code_network", "build_saeh", "hash_and_classifier"]
