"""Training on several replicas: the rules of `saeh.distributed` (one replica and two agree on one global batch), and
the training command run by two worker processes under MultiWorkerMirroredStrategy, killed and restarted."""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from saeh import distributed
from saeh.errors import SaehError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_tf_config_is_read_and_checked():
    assert distributed.worker_count({}) == 1
    config = {"cluster": {"chief": ["a:1"], "worker": ["b:2", "c:3"]}, "task": {"type": "worker", "index": 1}}
    assert distributed.worker_count({"TF_CONFIG": json.dumps(config)}) == 3
    local = distributed.localhost_tf_configs(2)
    assert [distributed.worker_count({"TF_CONFIG": each}) for each in local] == [2, 2]
    assert [json.loads(each)["task"]["index"] for each in local] == [0, 1]
    for bad in ("not json", json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 4}}),
                json.dumps({"cluster": {"worker": "a:1"}, "task": {"type": "worker", "index": 0}}),
                json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}})):
        with pytest.raises(SaehError, match="TF_CONFIG must be JSON like"):
            distributed.worker_count({"TF_CONFIG": bad})


def test_one_process_is_its_own_chief():
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    assert distributed.is_chief(strategy) and not distributed.is_multi_worker(strategy)
    assert distributed.task_name(strategy) == "local"
    assert distributed.barrier_value(strategy, 7) == 7


def test_a_batch_loss_is_handed_to_keras_once_per_image():
    """Keras scales per-sample losses for replicas but passes a scalar through: a batch statistic must come back
    per image, each the batch's value, so that its mean is the value."""
    from saeh import losses

    codes = np.random.default_rng(0).random((6, 8)).astype("float32")
    loss = losses.HashTermsLoss(alpha=0.3, beta=0.7)
    per_image = np.asarray(loss.call(np.zeros((6, 1), "float32"), codes))
    expected = 0.3 * float(losses.binary_term(codes)) + 0.7 * float(losses.balance_term(codes))
    assert per_image.shape == (6,)
    np.testing.assert_allclose(per_image, expected, rtol=1e-6)
    assert float(loss(np.zeros((6, 1), "float32"), codes)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.slow
def test_one_replica_and_two_agree_on_one_global_batch(tmp_path):
    """tests/replica_agreement.py: one step on 32 images with one replica, and with two of 16 each. The weights
    agree to float rounding; computing the balance term per replica instead moves them 10x further, so the
    tolerance can tell."""
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "replica_agreement.py"), str(tmp_path)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["agreement"] < 2e-4
    assert report["per_replica_balance"] > 10 * 2e-4
    one, two = report["one"][0], report["two"][0]
    for name in ("loss", "hash_x_balance", "y_decoded_loss", "val_loss", "val_hash_x_balance",
                 "val_y_predict_accuracy"):
        assert two[name] == pytest.approx(one[name], rel=1e-4, abs=1e-6), name


def start_workers(command, log_dir, scratch, attempt):
    """Two worker processes of one cluster on localhost, each logging to its own file."""
    processes = []
    for index, config in enumerate(distributed.localhost_tf_configs(2)):
        env = {**os.environ, "TF_CONFIG": config, distributed.WORKER_DIR_VARIABLE: str(scratch),
               "TF_CPP_MIN_LOG_LEVEL": "2"}
        log = open(os.path.join(log_dir, f"attempt{attempt}-worker{index}.log"), "w")
        processes.append((subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True), log))
    return processes


def stop(processes):
    for process, log in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        log.close()


def wait_for(processes, timeout):
    deadline = time.time() + timeout
    try:
        for process, _ in processes:
            process.wait(timeout=max(1, deadline - time.time()))
    finally:
        stop(processes)
    return [process.returncode for process, _ in processes]


def read(path):
    with open(path) as handle:
        return handle.read()


@pytest.mark.slow
def test_two_workers_train_one_model_killed_and_restarted(tmp_path, mnist_subset):
    """The training command under TF_CONFIG on two local worker processes: both killed once the first epoch's
    checkpoint is written (the second epoch is not over: it takes seconds, the poll 0.2 s), both started again: they
    resume from the chief's checkpoint and finish with the same weights; only the chief's run folder has codes and
    scores."""
    import keras

    from saeh.training.checkpoints import completed_epochs

    data = mnist_subset(256, 64)
    save_dir, scratch = tmp_path / "runs", tmp_path / "workers"
    command = [sys.executable, os.path.join(ROOT, "hash_su_ae_train.py"), "--which-data", str(data),
               "--stack-num", "1", "--epochs", "2", "--batch-size", "32", "--validation-size", "64",
               "--save-dir", str(save_dir), "--run-name", "run", "--verbose", "2"]
    run_dir = save_dir / "run"
    last = run_dir / "checkpoints" / "last.keras"

    processes = start_workers(command, str(tmp_path), scratch, 1)
    deadline = time.time() + 600
    try:
        while not last.exists() and time.time() < deadline and all(p.poll() is None for p, _ in processes):
            time.sleep(0.2)
    finally:
        stop(processes)
    assert last.exists(), read(tmp_path / "attempt1-worker0.log")[-3000:]
    assert completed_epochs(str(last)) == 1

    codes = wait_for(start_workers(command, str(tmp_path), scratch, 2), timeout=900)
    logs = [read(tmp_path / f"attempt2-worker{index}.log") for index in range(2)]
    assert codes == [0, 0], "\n\n".join(log[-3000:] for log in logs)
    resumed = [re.search(r"resuming from .* at epoch (\d+)", log) for log in logs]
    assert all(resumed) and resumed[0].group(1) == resumed[1].group(1) == "2"
    assert "global batch 64 = 32 per replica x 2" in logs[0]

    history = json.loads(read(run_dir / "history.json"))
    assert [row["epoch"] for row in history["epochs"]] == [1, 2]
    for name in ("model.keras", "scores.json", "codes/query.npz", "codes/database.npz", "run.json"):
        assert (run_dir / name).exists(), name
    assert json.loads(read(run_dir / "run.json"))["replicas"] == 2
    worker = scratch / "worker-1"
    assert not (worker / "codes").exists() and not (worker / "scores.json").exists()
    assert not glob.glob(str(run_dir / "**" / "*.tmp*"), recursive=True)
    chief_model = keras.models.load_model(run_dir / "model.keras", compile=False)
    worker_model = keras.models.load_model(worker / "model.keras", compile=False)
    for chief_weights, worker_weights in zip(chief_model.get_weights(), worker_model.get_weights()):
        np.testing.assert_array_equal(chief_weights, worker_weights)  # moving averages of batch norm included


def lone_worker_config():
    """TF_CONFIG of worker 0 of a two-worker cluster on localhost whose worker 1 never comes, and worker 1's address."""
    config = distributed.localhost_tf_configs(2)[0]
    return config, json.loads(config)["cluster"]["worker"][1]


def test_a_wait_past_its_limit_names_the_missing_peer():
    from saeh import peers

    config, peer_address = lone_worker_config()
    lines = []
    started = time.monotonic()
    with pytest.raises(SaehError, match=rf"worker 0 waited \d+ s .* for worker 1 at {peer_address}, which never"):
        peers.wait_for_peers(distributed.cluster_from_environment({"TF_CONFIG": config}),
                             *distributed.own_task({"TF_CONFIG": config}), limit_s=0.6, report_every_s=0.25,
                             poll_s=0.1, log=lines.append)
    assert time.monotonic() - started < 5
    assert len(lines) >= 2 and all(f"waiting for worker 1 at {peer_address}" in line for line in lines), lines
    with pytest.raises(SaehError, match="SAEH_PEER_WAIT_LIMIT must be a positive number of seconds; got 'soon'"):
        peers.wait_limit({peers.WAIT_LIMIT_VARIABLE: "soon"})


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_a_waiting_worker_says_so_and_stops_on_a_signal(tmp_path, signal_number):
    """The training script as worker 0 of two, whose peer never comes: it says whom it waits for, and SIGTERM or
    SIGINT (timeout, Slurm and Kubernetes send the first, Ctrl-C the second) ends it within seconds with one line,
    leaving no run folder. TensorFlow's own wait catches SIGTERM and ignores both."""
    config, peer_address = lone_worker_config()
    environment = {**{name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"},
                   "TF_CONFIG": config}  # the script's own quiet start: the error line is stderr's only line
    command = [sys.executable, os.path.join(ROOT, "hash_su_ae_train.py"), "--which-data", "mnist-sample",
               "--stack-num", "1", "--epochs", "1", "--save-dir", str(tmp_path / "runs"), "--verbose", "2"]
    process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=tmp_path, start_new_session=True)
    output = []
    reader = threading.Thread(target=lambda: output.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None and not any("waiting" in o for o in output):
            time.sleep(0.2)
        assert any(f"worker 0: waiting for worker 1 at {peer_address} (0 s so far" in line for line in output), output
        time.sleep(1)  # into the wait loop's sleep, where a signal arrives in the field
        signalled = time.monotonic()
        process.send_signal(signal_number)
        process.wait(timeout=20)
        err = process.stderr.read()
        assert time.monotonic() - signalled < 5
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    name = signal.Signals(signal_number).name
    assert process.returncode == 128 + signal_number, err
    assert re.fullmatch(rf"hash_su_ae_train.py: error: worker 0 stopped by {name} after \d+ s waiting for worker 1 "
                        rf"at {peer_address}; nothing was trained or written\n", err), err
    assert not (tmp_path / "runs").exists()
