"""The paper's published numbers (Tables 1 and 2), read from `published_results.json`: one data file that
RESULTS.md, the gamma notebook and the comparison scripts all read."""

import json
import os

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "published_results.json")


def published_results():
    """The whole file as a dict: `table1_map_at_1000` (per method and dataset, 12/24/32/48 bits),
    `table2_gamma` (CIFAR-10, 32 bits, mAP@1000 and precision within radius 2 for each gamma) and
    `dpsh_protocol_map_at_all` (other papers' numbers under DPSH's protocol, each row with its source and, where
    they differ from the table's, its own code lengths)."""
    with open(PATH) as handle:
        return json.load(handle)


def _row_value(table_name, method, dataset, bits):
    """The value of `method` on `dataset` at `bits` bits in the by-method table `table_name`, or None. A row may
    give its own code lengths (`bits`) where its source used others than the table's."""
    table = published_results()[table_name]
    for row in table["rows"]:
        lengths = row.get("bits", table["bits"])
        if row["method"] == method and dataset in row and bits in lengths:
            return row[dataset][lengths.index(bits)]
    return None


def table1_map(method, dataset, bits):
    """The paper's mAP@1000 (%) of `method` (registry name) on `dataset` at `bits` bits, or None."""
    return _row_value("table1_map_at_1000", method, dataset, bits)


def dpsh_protocol_map(method, dataset, bits):
    """Another paper's mAP@all (%) of `method` under DPSH's protocol on `dataset` at `bits` bits, or None."""
    return _row_value("dpsh_protocol_map_at_all", method, dataset, bits)
