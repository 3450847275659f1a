"""The paper's published numbers (Tables 1 and 2), read from `published_results.json`: one data file that
RESULTS.md, the gamma notebook and the comparison scripts all read."""

import json
import os

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "published_results.json")


def published_results():
    """The whole file as a dict: `table1_map_at_1000` (per method and dataset, 12/24/32/48 bits),
    `table2_gamma` (CIFAR-10, 32 bits, mAP@1000 and precision within radius 2 for each gamma) and
    `dpsh_protocol_map_at_all` (other papers' numbers under DPSH's protocol, each row with its source)."""
    with open(PATH) as handle:
        return json.load(handle)


def table1_map(method, dataset, bits):
    """The paper's mAP@1000 (%) of `method` (registry name) on `dataset` at `bits` bits, or None."""
    table = published_results()["table1_map_at_1000"]
    if bits not in table["bits"]:
        return None
    for row in table["rows"]:
        if row["method"] == method and dataset in row:
            return row[dataset][table["bits"].index(bits)]
    return None


def dpsh_protocol_map(method, dataset, bits):
    """Another paper's mAP@all (%) of `method` under DPSH's protocol on `dataset` at `bits` bits, or None."""
    table = published_results()["dpsh_protocol_map_at_all"]
    if bits not in table["bits"]:
        return None
    for row in table["rows"]:
        if row["method"] == method and dataset in row:
            return row[dataset][table["bits"].index(bits)]
    return None
