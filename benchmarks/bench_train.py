"""Training throughput: images/s of a training step of SAEH (gamma = 1, with the decoder) and SAEH-minus (no
decoder) at several depths, float32 against mixed precision, XLA or not (`--jit-compile`), batch 64 against a larger
batch, and the real input pipeline against the same steps on one cached batch (the pipeline's overhead), all
measured in one run. The real pipeline reads the images from memory, and with `--sources` also streamed from JPEG
files (decoded every batch) and from their decoded copy on disk (`--cache-dir`).

Each row builds and compiles the model as the training loop does
(`saeh.training.compiled_model.build_compiled`: the encoder's recipe, `saeh.recipes.for_encoder`, and the method's
losses; the augmentation of that recipe), traces it on a few warm-up steps, then times whole steps until
`--seconds` have passed. The table gives images/s, the ratio to the first row of the same model (float32, batch
64, cached batch), and the pipeline's overhead as a share of the step time. The CPU model and whether it has
bfloat16 units (AMX, AVX512-BF16) are printed first: mixed bfloat16 on a CPU without them is emulated and slow.

    python benchmarks/bench_train.py                            # the default grid (tens of minutes on 2 cores)
    python benchmarks/bench_train.py --stack-nums 2 --batch-sizes 64 --seconds 10
    python benchmarks/bench_train.py --encoders resnet50 --image-side 224 --stack-nums 1 --methods saeh-minus
    python benchmarks/bench_train.py --stack-nums 2 --batch-sizes 64 --precisions float32 --sources memory files cache
    python benchmarks/bench_train.py --encoders whitened_cnn --batch-sizes 1024 --images 4096   # cifar10-fast's rows
"""

import argparse
import itertools
import os
import platform
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from saeh.run_data import AUTO_ON_OFF  # noqa: E402

WARM_UP_STEPS = 3
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_description():
    """(CPU model, the bfloat16 instruction flags it has)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return model, sorted(flags & set(BF16_FLAGS))


def step_clock():
    """A Keras callback that keeps the time at the end of every training step (`.ends`)."""
    import keras

    class StepClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

    return StepClock()


def steps_per_second(model, batches, seconds):
    """Training steps per second of one `model.fit` over `batches`, timed from the end of the warm-up steps
    (tracing, the first batches) to the end of the last step; one fit, so no fit's own set-up is counted."""
    probe = step_clock()
    model.fit(batches, steps_per_epoch=WARM_UP_STEPS, epochs=1, verbose=0, shuffle=False, callbacks=[probe])
    step_seconds = max(probe.ends[-1] - probe.ends[0], 1e-3) / max(len(probe.ends) - 1, 1)
    clock = step_clock()
    model.fit(batches, steps_per_epoch=WARM_UP_STEPS + max(3, int(seconds / step_seconds)), epochs=1, verbose=0,
              shuffle=False, callbacks=[clock])
    timed = clock.ends[WARM_UP_STEPS - 1:]
    return (len(timed) - 1) / (timed[-1] - timed[0])


def image_sources(images, names, folder):
    """{source name: the images as the pipeline reads them}: the array (memory), JPEG files of it streamed
    (files), and those files' decoded copy on disk (cache)."""
    from PIL import Image

    from saeh.data import scan_image_files
    from saeh.data.cache import cached_images

    sources = {"memory": images}
    if {"files", "cache"} & set(names):
        paths = []
        for index, image in enumerate(images):
            paths.append(os.path.join(folder, f"{index:06d}.jpg"))
            Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(paths[-1], quality=90)
        sources["files"] = scan_image_files(paths, source=folder)
        if "cache" in names:
            sources["cache"] = cached_images(sources["files"], os.path.join(folder, "cache"))
    return {name: sources[name] for name in names}


def measure(method_name, *, encoder, stack_num, side, channels, batch_size, precision, seconds, sources,
            jit_compile="auto"):
    """(cached-batch steps/s, {source: real-pipeline steps/s}) for one configuration."""
    import keras
    import tensorflow as tf

    import baselines
    from saeh import recipes
    from saeh.data import pipeline
    from saeh.methods import ModelSpec
    from saeh.training.compiled_model import build_compiled, targets_for

    method = baselines.get(method_name)
    hyperparameters = method.resolve()
    keras.utils.set_random_seed(0)
    spec = ModelSpec((side, side, channels), 10, hash_bits=32, stack_num=stack_num, encoder=encoder)
    model = build_compiled(method, hyperparameters, spec, mixed_precision=precision != "float32" and precision,
                           jit_compile=AUTO_ON_OFF[jit_compile])
    count = len(next(iter(sources.values())))
    per_sample = {"label": pipeline.label_matrix(np.arange(count) % 10, 10)}
    targets = targets_for(model, method)
    recipe = recipes.for_encoder(encoder)
    real = {name: pipeline.training_batches(images, per_sample, targets, batch_size, seed=0, epochs=10_000,
                                            augment=True, pad=recipe.augment_pad, padding=recipe.augment_padding)[0]
            for name, images in sources.items()}
    cached = tf.data.Dataset.from_tensors(next(iter(real["memory"]))).repeat()
    return (steps_per_second(model, cached, seconds),
            {name: steps_per_second(model, batches, seconds) for name, batches in real.items()})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["saeh", "saeh-minus"])
    parser.add_argument("--encoders", nargs="+", default=["resnet_cifar"], help="resnet_cifar, resnet50, dsh_cnn, whitened_cnn")
    parser.add_argument("--stack-nums", type=int, nargs="+", default=[1, 2, 3, 18])
    parser.add_argument("--image-side", type=int, default=32, help="square inputs of this side (CIFAR: 32)")
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"],
                        help="float32, mixed_bfloat16 or mixed_float16")
    parser.add_argument("--jit-compile", nargs="+", default=["auto"], choices=tuple(AUTO_ON_OFF),
                        help="XLA compilation of the step, as the training script's --jit-compile (auto: Keras's "
                        "choice, which leaves XLA off on a machine without an accelerator)")
    parser.add_argument("--seconds", type=float, default=15.0, help="timed seconds per measurement (after warm-up)")
    parser.add_argument("--images", type=int, default=2048, help="random uint8 images behind the real pipeline")
    parser.add_argument("--sources", nargs="+", default=["memory"], choices=("memory", "files", "cache"),
                        help="where the real pipeline reads the images: memory, JPEG files, their decoded cache")
    args = parser.parse_args()
    if "memory" not in args.sources:
        args.sources.insert(0, "memory")  # its first batch is the cached batch of every row

    import tensorflow as tf

    model_name, bf16 = cpu_description()
    print(f"CPU: {model_name}; {os.cpu_count()} cores; bfloat16 units: {', '.join(bf16) or 'none'}; GPUs: "
          f"{len(tf.config.list_physical_devices('GPU'))}; TensorFlow {tf.__version__}; "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    images = np.random.default_rng(0).integers(0, 256, (args.images, args.image_side, args.image_side,
                                                        args.channels), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        table(args, image_sources(images, args.sources, folder))


def table(args, sources):
    header = (f"{'method':10s} {'encoder':12s} {'stack':>5s} {'precision':>14s} {'xla':>4s} {'batch':>5s} "
              f"{'img/s cached':>12s} {'ratio':>6s} {'source':>7s} {'img/s pipeline':>14s} {'overhead':>8s}")
    print(header)
    print("-" * len(header))
    for method in args.methods:
        for encoder in args.encoders:
            for stack_num in args.stack_nums if encoder == "resnet_cifar" else args.stack_nums[:1]:
                reference = None
                for precision, jit_compile, batch_size in itertools.product(args.precisions, args.jit_compile,
                                                                            args.batch_sizes):
                    cached, real = measure(method, encoder=encoder, stack_num=stack_num, side=args.image_side,
                                           channels=args.channels, batch_size=batch_size, precision=precision,
                                           seconds=args.seconds, sources=sources, jit_compile=jit_compile)
                    rate = cached * batch_size
                    reference = reference or rate
                    for source, source_rate in real.items():
                        # Overhead: how much longer a step takes with the real pipeline than on a cached batch.
                        overhead = cached / source_rate - 1
                        print(f"{method:10s} {encoder:12s} {stack_num:5d} {precision:>14s} {jit_compile:>4s} "
                              f"{batch_size:5d} {rate:12.1f} {rate / reference:6.2f} {source:>7s} "
                              f"{source_rate * batch_size:14.1f} {overhead:8.1%}", flush=True)


if __name__ == "__main__":
    main()
