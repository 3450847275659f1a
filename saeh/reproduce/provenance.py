"""Where a result came from: the git state of the clone (HEAD, the commit of the code a cell ran, whether the tree
differed from it) and the machine (CPU, platform, Python, TensorFlow and Keras versions); `run_git` runs a git command
in the clone for these and for the runner's commits."""

import os
import platform
import subprocess
from importlib import metadata

from saeh.reproduce.layout import RESULTS


def run_git(root, *args):
    """`git -C root args...`, its output captured as text."""
    return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True)


def git_state(root):
    """HEAD, the last commit that changed anything outside results/ (the code a cell ran; result commits made by
    --commit do not move it), and whether the tree outside results/ differs from it (untracked files included)."""
    try:
        head = run_git(root, "rev-parse", "HEAD")
    except OSError:
        return {"head": None, "commit": None, "dirty": None}
    if head.returncode != 0:
        return {"head": None, "commit": None, "dirty": None}
    outside_results = ["--", ".", f":(exclude){RESULTS}"]
    code = run_git(root, "log", "-1", "--format=%H", *outside_results).stdout.strip()
    dirty = bool(run_git(root, "status", "--porcelain", *outside_results).stdout.strip())
    return {"head": head.stdout.strip(), "commit": code or head.stdout.strip(), "dirty": dirty}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_version(*names):
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def machine():
    """What the cells run on; package versions are read from the installed metadata (TensorFlow is not started)."""
    return {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(),
            "tensorflow": package_version("tensorflow", "tensorflow-cpu", "tf-nightly"),
            "keras": package_version("keras")}
