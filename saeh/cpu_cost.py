"""What a training run would cost on a CPU, and the refusal of one that would take days there unless asked.

The paper's settings (ResNet-110, 90 epochs) are a GPU job: on a CPU they take days, and the presets exist for
that case (`python -m saeh.presets`). The cost is estimated from a recorded throughput, not measured on the spot
(measuring needs the whole network built and traced, a minute of its own): `benchmarks/bench_train.py` measures
it on any machine.
"""

from saeh.errors import SaehError

AGREE_FLAG = "--yes-train-on-cpu"
REFUSED_ABOVE_HOURS = 12.0
# Training throughput of SAEH (with its decoder) on the resnet_cifar encoder, float32, batch 64, 32x32x3 images read
# from memory by the training pipeline: images/s by stack_num, as `python benchmarks/bench_train.py --methods saeh
# --stack-nums 18 1 --batch-sizes 64 --precisions float32 --seconds 15` measured it on a 2-core Intel Xeon (AMX,
# AVX512-BF16) on 2026-12-07, shared with other jobs (load average about 6): an idle machine of that kind is faster.
RECORDED_IMAGES_PER_SECOND = {"machine": "a 2-core Intel Xeon shared with other jobs", "encoder": "resnet_cifar",
                              "by_stack_num": {1: 173.3, 18: 14.4}}
PRESETS_FOR_DATA = {"cifar10": ("cifar10-fast", "cifar10-table"), "mnist": ("mnist-cpu",)}


def images_per_second(encoder, stack_num):
    """The recorded training throughput of `encoder` at `stack_num` (interpolated linearly in the time per image,
    which grows with the number of residual blocks), or None where nothing is recorded for the encoder."""
    recorded = RECORDED_IMAGES_PER_SECOND
    if encoder != recorded["encoder"]:
        return None
    (low, low_rate), (high, high_rate) = sorted(recorded["by_stack_num"].items())
    seconds_per_image = 1 / low_rate + (stack_num - low) * (1 / high_rate - 1 / low_rate) / (high - low)
    return 1 / max(seconds_per_image, 1 / low_rate)


def training_hours(encoder, stack_num, epochs, training_images):
    """Estimated hours of `epochs` passes over `training_images` on a CPU like the recorded one; None if unknown."""
    rate = None if stack_num is None or epochs is None else images_per_second(encoder, stack_num)
    return None if rate is None else epochs * training_images / rate / 3600


def gpu_visible():
    """Whether TensorFlow sees a GPU."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def check_cpu_training(*, encoder, stack_num, epochs, training_images, which_data, agreed, log=print):
    """Refuse (SaehError) a training run estimated to take more than `REFUSED_ABOVE_HOURS` on this machine's CPU
    when no GPU is visible, saying what it would cost and which preset to use instead; with `agreed` (the
    `--yes-train-on-cpu` flag), log the estimate and go on. Runs with a GPU, or on encoders with no recorded
    throughput, pass."""
    hours = training_hours(encoder, stack_num, epochs, training_images)
    if hours is None or hours <= REFUSED_ABOVE_HOURS or gpu_visible():
        return
    rate = images_per_second(encoder, stack_num)
    cost = (f"{encoder} with stack_num {stack_num} for {epochs} epochs of {training_images} training images on a CPU "
            f"(no GPU visible) is about {hours:.0f} hours ({hours / 24:.1f} days) at {rate:.1f} images/s, the rate "
            f"recorded on {RECORDED_IMAGES_PER_SECOND['machine']} (`python benchmarks/bench_train.py --stack-nums "
            f"{stack_num} --batch-sizes 64 --precisions float32` measures yours)")
    if agreed:
        log(f"note: {cost}; going on, as {AGREE_FLAG} asks")
        return
    presets = PRESETS_FOR_DATA.get(str(which_data).lower())
    instead = (" or ".join(f"--preset {name}" for name in presets) + " (`python -m saeh.presets` shows what each "
               "changes)") if presets else "a preset of `python -m saeh.presets`, or a smaller --stack-num and --epochs"
    raise SaehError(f"{cost}. On a CPU use {instead}; to train these settings here anyway pass {AGREE_FLAG}")
