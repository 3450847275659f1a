"""The training recipes (saeh.recipes) and the whitened_cnn encoder (saeh.models.whitened_cnn), each checked against a
reference written from its source (airbench94.py and torch.optim.SGD's documented update), not from our code."""

import dataclasses

import keras
import numpy as np
import pytest

from saeh import optimizers, recipes
from saeh.errors import SaehError
from saeh.models import whitened_cnn


def torch_sgd_steps(weights, gradients, rates, momentum, nesterov, weight_decay):
    """torch.optim.SGD (dampening 0): d = g + wd * w; buf = d on the first step, else momentum * buf + d; with
    Nesterov d = d + momentum * buf, else d = buf; w -= lr * d. One row of `gradients` and `rates` per step."""
    weights, buffer = weights.astype(np.float64), None
    for gradient, rate in zip(gradients, rates):
        step = gradient + weight_decay * weights
        buffer = step.copy() if buffer is None else momentum * buffer + step
        step = step + momentum * buffer if nesterov else buffer
        weights = weights - rate * step
    return weights


def airbench_triangle(steps, start, end, peak):
    """airbench94's `triangle`: piecewise linear through (0, start), (int(peak * steps), 1), (steps, end)."""
    return np.interp(np.arange(steps + 1), [0, int(peak * steps), steps], [start, 1.0, end])


def quadratic_model(name="dense"):
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(2, name=name)(inputs))


@pytest.mark.parametrize("nesterov", [True, False])
def test_recipe_sgd_takes_torchs_steps_with_coupled_decay(nesterov):
    model = quadratic_model()
    kernel = model.get_layer("dense").kernel
    start = np.random.default_rng(0).normal(size=(3, 2))
    kernel.assign(start)
    gradients = np.random.default_rng(1).normal(size=(6, 3, 2))
    rates = [0.3, 0.5, 0.5, 0.2, 0.1, 0.05]
    optimizer = optimizers.RecipeSGD(learning_rate=0.3, momentum=0.85, nesterov=nesterov, coupled_weight_decay=0.01)
    optimizer.build([kernel])
    for gradient, rate in zip(gradients, rates):
        optimizer.learning_rate = rate
        optimizer.apply([gradient.astype(np.float32)], [kernel])
    expected = torch_sgd_steps(start, gradients, rates, 0.85, nesterov, 0.01)
    np.testing.assert_allclose(kernel.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_recipe_sgd_scales_batch_norm_biases_and_freezes_after_its_steps():
    inputs = keras.Input((4,))
    normed = keras.layers.BatchNormalization(name="bn", scale=False)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, name="head")(normed))
    beta, kernel = model.get_layer("bn").beta, model.get_layer("head").kernel
    optimizer = optimizers.RecipeSGD(learning_rate=0.1, momentum=0.5, coupled_weight_decay=0.2, norm_bias_rate=8.0,
                                  frozen_after_steps={"head/kernel": 2})
    optimizer.build([beta, kernel])
    start_beta, start_kernel = beta.numpy().copy(), kernel.numpy().copy()
    gradients = [(np.full(4, 0.5, np.float32), np.full((4, 1), 1.0, np.float32))] * 4
    for beta_gradient, kernel_gradient in gradients:
        optimizer.apply([beta_gradient, kernel_gradient], [beta, kernel])
    # The bias: rate x8 and decay /8, as airbench94's parameter group of norm biases (lr_biases, wd / lr_biases).
    expected_beta = torch_sgd_steps(start_beta, [g for g, _ in gradients], [0.8] * 4, 0.5, True, 0.2 / 8)
    np.testing.assert_allclose(beta.numpy(), expected_beta, rtol=1e-5, atol=1e-6)
    # The kernel: two steps, then nothing (no momentum, no decay): as a PyTorch weight with requires_grad off.
    expected_kernel = torch_sgd_steps(start_kernel, [g for _, g in gradients[:2]], [0.1] * 2, 0.5, True, 0.2)
    np.testing.assert_allclose(kernel.numpy(), expected_kernel, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("total", [10, 43, 440])
def test_triangle_schedule_matches_airbench(total):
    expected = airbench_triangle(total, 0.2, 0.07, 0.23)
    factors = [recipes.triangle_factor(step, total, 0.2, 0.23, 0.07) for step in range(total + 1)]
    np.testing.assert_allclose(factors, expected, atol=1e-12)
    schedule = optimizers.TriangleSchedule(1.5, total, 0.2, 0.23, 0.07)
    np.testing.assert_allclose([float(schedule(step)) for step in range(total + 1)], 1.5 * expected, rtol=1e-6)
    assert optimizers.TriangleSchedule.from_config(schedule.get_config()).get_config() == schedule.get_config()


def test_the_whitened_cnn_recipe_is_airbench94s_in_batch_mean_terms():
    recipe = recipes.WHITENED_CNN
    # airbench94.py: kilostep_scale = 1024 * (1 + 1 / (1 - 0.85)); lr = 11.5 / kilostep_scale on the summed loss;
    # its groups' weight_decay = wd / lr with wd = 0.0153 * 1024 / kilostep_scale.
    kilostep = 1024 * (1 + 1 / (1 - 0.85))
    torch_lr, torch_wd = 11.5 / kilostep, 0.0153 * 1024 / kilostep
    assert recipe.learning_rate == pytest.approx(torch_lr * 1024)  # a mean loss has 1/1024 of the sum's gradient
    assert recipe.weight_decay * recipe.learning_rate == pytest.approx(torch_wd)  # the same decay per step
    assert recipe.learning_rate == pytest.approx(1.5)
    assert recipe.weight_decay == pytest.approx(1.3305e-3, rel=1e-3)
    assert (recipe.momentum, recipe.norm_bias_rate, recipe.label_smoothing) == (0.85, 64.0, 0.2)
    assert recipes.for_encoder("whitened_cnn") is recipe and recipes.for_encoder("resnet_cifar") is recipes.ORIGINAL


def test_a_recipe_refuses_bad_settings():
    with pytest.raises(SaehError, match="schedule must be"):
        recipes.Recipe("bad", "nowhere", schedule="exponential")
    with pytest.raises(SaehError, match="optimizer must be"):
        recipes.Recipe("bad", "nowhere", optimizer="adagrad")
    with pytest.raises(SaehError, match="drops must be"):
        recipes.Recipe("bad", "nowhere", schedule="drops", drops=(0.5, 0.2))
    with pytest.raises(SaehError, match="go together"):
        recipes.Recipe("bad", "nowhere", schedule="drops")
    with pytest.raises(SaehError, match="learning_rate must be positive"):
        dataclasses.replace(recipes.WHITENED_CNN, learning_rate=0.0)


def airbench_lookahead(weights_per_step, every, start_epoch, steps_per_epoch, total, base, power):
    """airbench94's loop: after each step, from epoch start_epoch on, every `every` steps the slow copy is made (the
    first time) or blended (ema.lerp_(net, 1 - rho), net = ema); after each epoch net = ema. The network's weights
    after step t are given by `weights_per_step(t, current)` (the optimiser's move from `current`)."""
    net, slow, step = np.zeros(3), None, 0
    for epoch in range(total // steps_per_epoch):
        for _ in range(steps_per_epoch):
            net = weights_per_step(step, net)
            step += 1
            if epoch >= start_epoch and step % every == 0:
                if slow is None:
                    slow = net.copy()
                else:
                    rho = base ** every * (step / total) ** power
                    slow = slow + (1 - rho) * (net - slow)
                    net = slow.copy()
        if slow is not None:
            net = slow.copy()
    return net


def test_lookahead_callback_matches_airbenchs_loop():
    lookahead = recipes.Lookahead(every=2, start_epoch=1, base=0.9, power=2.0)
    steps_per_epoch, epochs = 3, 4
    total = steps_per_epoch * epochs

    def move(step, current):  # a deterministic "optimiser" step
        return current + np.array([1.0, -0.5, 0.25]) * (step + 1)

    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras.layers.Dense(3, use_bias=False, name="w")(inputs))
    weight = model.get_layer("w").kernel
    weight.assign(np.zeros((1, 3)))
    callback = optimizers.LookaheadCallback(lookahead, steps_per_epoch, total)
    callback.set_model(model)
    step = 0
    for epoch in range(epochs):
        callback.on_epoch_begin(epoch)
        for batch in range(steps_per_epoch):
            weight.assign(move(step, weight.numpy()[0])[None])
            step += 1
            callback.on_train_batch_end(batch)
    expected = airbench_lookahead(move, 2, 1, steps_per_epoch, total, 0.9, 2.0)
    np.testing.assert_allclose(weight.numpy()[0], expected, rtol=1e-6)


def test_partial_dirac_is_the_identity_on_the_first_channels():
    kernel = whitened_cnn.PartialDirac(seed=0)((3, 3, 4, 6)).numpy()
    for out in range(4):
        expected = np.zeros((3, 3, 4))
        expected[1, 1, out] = 1.0
        np.testing.assert_array_equal(kernel[..., out], expected)
    rest = kernel[..., 4:]
    assert np.abs(rest).max() <= 1 / np.sqrt(3 * 3 * 4) and rest.std() > 0.05  # PyTorch's default conv init
    narrow = whitened_cnn.PartialDirac(seed=0)((3, 3, 6, 4)).numpy()  # fewer outputs than inputs: all identity
    assert np.count_nonzero(narrow) == 4 and all(narrow[1, 1, channel, channel] == 1 for channel in range(4))


def test_patch_whitening_whitens_the_patches_it_was_fitted_to():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(64, 12, 12, 3))
    images = np.clip(0.5 + 0.15 * (base + np.roll(base, 1, axis=1) + base[..., :1]), 0, 1).astype(np.float32)
    layer = whitened_cnn.PatchWhitening(epsilon=0.0)
    layer.build((None, 12, 12, 3))
    layer.adapt(images)
    outputs = keras.ops.convert_to_numpy(layer(images)).reshape(-1, 24)
    half = outputs[:, :12]
    covariance = half.T @ half / len(half)
    np.testing.assert_allclose(covariance, np.eye(12), atol=1e-3)  # white: unit variance, no correlation
    np.testing.assert_allclose(outputs[:, 12:], -half, atol=1e-5)
    # The filters' order: largest eigenvalue first, as airbench94's flip(0) of torch.linalg.eigh's ascending order.
    standard = (images - images.mean((0, 1, 2))) / images.std((0, 1, 2))
    patches = whitened_cnn.image_patches(standard, 2)
    eigenvalues = np.linalg.eigvalsh(patches.T @ patches / len(patches))[::-1]
    filters = whitened_cnn.whitening_filters(standard, 2, epsilon=0.0).reshape(12, 24)[:, :12]
    np.testing.assert_allclose(np.linalg.norm(filters, axis=0), 1 / np.sqrt(eigenvalues), rtol=1e-4)


def test_image_patches_are_the_windows_a_conv_kernel_reads():
    images = np.random.default_rng(0).normal(size=(2, 5, 6, 3)).astype(np.float32)
    kernel = np.random.default_rng(1).normal(size=(2, 2, 3, 4)).astype(np.float32)
    convolved = keras.ops.convert_to_numpy(keras.ops.conv(images, kernel, padding="valid"))
    by_patches = whitened_cnn.image_patches(images.astype(np.float64), 2) @ kernel.reshape(12, 4)
    np.testing.assert_allclose(by_patches, convolved.reshape(-1, 4), rtol=1e-4, atol=1e-5)


def test_the_whitening_sample_is_drawn_not_the_first_rows():
    images = np.repeat(np.arange(10, dtype=np.uint8), 1000)[:, None, None, None]  # stored class by class
    sample = whitened_cnn.whitening_sample(images, seed=0)
    assert len(sample) == whitened_cnn.WHITENING_SAMPLE and len(np.unique(sample)) == 10
    np.testing.assert_array_equal(sample, whitened_cnn.whitening_sample(images, seed=0))


def quick_recipe():
    """The whitened_cnn recipe with Lookahead from the second epoch, every 2 steps: every part of it acts in a
    4-epoch run."""
    return dataclasses.replace(recipes.WHITENED_CNN, name="whitened_cnn-test",
                               lookahead=recipes.Lookahead(every=2, start_epoch=1), frozen_after_epochs={
                                   "encoder_whiten/bias": 2})


def train_whitened(split, run_dir, callbacks=(), epochs=4):
    from saeh import registry, training

    return training.train(registry.get("saeh"), split, 4, run_dir, hash_bits=12, encoder="whitened_cnn",
                          epochs=epochs, batch_size=32, augment=True, verbose=0, log=lambda message: None,
                          callbacks=callbacks, recipe=quick_recipe(), final_weights="last")


@pytest.mark.slow
def test_whitened_cnn_trains_and_resumes_exactly_with_its_recipe(separable_split, tmp_path):
    import json

    from saeh.inference import codes_for
    from saeh.retrieval import map_at_k
    from helpers import Crash, CrashAfterEpoch

    whole = train_whitened(separable_split, str(tmp_path / "whole"))
    with open(tmp_path / "whole" / "run.json") as handle:
        assert json.load(handle)["recipe"] == "whitened_cnn-test"
    whitening = whole.model.get_layer("encoder_whiten")
    assert not np.allclose(whitening.kernel.numpy()[..., :4].reshape(4, 4), np.eye(4))  # fitted to the data
    with pytest.raises(Crash):
        train_whitened(separable_split, str(tmp_path / "resumed"), callbacks=[CrashAfterEpoch(3)])
    resumed = train_whitened(separable_split, str(tmp_path / "resumed"))
    for before, after in zip(whole.model.weights, resumed.model.weights):
        np.testing.assert_allclose(after.numpy(), before.numpy(), rtol=1e-5, atol=1e-6, err_msg=before.path)
    codes = codes_for(whole.model, separable_split.query).hash_bin
    database = codes_for(whole.model, separable_split.database).hash_bin
    score = map_at_k(codes, database, separable_split.query.labels, separable_split.database.labels, k=100)
    assert score > 0.6  # random codes: about 0.29


def test_whitened_cnn_refuses_images_too_small_for_its_pools():
    from saeh.methods import ModelSpec

    with pytest.raises(SaehError, match="at least 16x16"):
        from saeh.models import build_saeh

        build_saeh(ModelSpec((12, 12, 3), 4).input_shape, 4, encoder="whitened_cnn")


def test_classifier_codes_on_whitened_cnn_read_the_sources_head_without_bias_at_one_ninth():
    from baselines.classifier_codes import CLASSIFIER_CODES, build_classifier_codes
    from saeh.methods import ModelSpec

    model = build_classifier_codes(ModelSpec((16, 16, 3), 5, hash_bits=8, encoder="whitened_cnn"),
                                   CLASSIFIER_CODES.resolve())
    head = model.get_layer("y_predict_logits")
    assert not head.use_bias and len(head.weights) == 1
    images = np.random.default_rng(0).random((3, 16, 16, 3), dtype=np.float32)
    features = keras.Model(model.inputs, model.get_layer("encoder_pool").output)(images).numpy()
    logits = features @ head.kernel.numpy() / 9.0
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(model(images)["y_predict"].numpy(), expected, rtol=1e-5, atol=1e-6)
    # Other encoders keep a plain Dense classifier with a bias.
    plain = build_classifier_codes(ModelSpec((16, 16, 3), 5, hash_bits=8, encoder="dsh_cnn"),
                                   CLASSIFIER_CODES.resolve())
    assert plain.get_layer("y_predict").use_bias


def test_an_ablated_recipe_changes_one_ingredient_and_says_so():
    recipe = recipes.ablated(recipes.WHITENED_CNN, ["lookahead"])
    assert recipe.lookahead is None and recipe.name == "whitened_cnn-without-lookahead"
    assert dataclasses.replace(recipe, lookahead=recipes.WHITENED_CNN.lookahead, name="whitened_cnn",
                               deviations=recipes.WHITENED_CNN.deviations) == recipes.WHITENED_CNN
    assert recipe.deviations[-1] == "ablation: no Lookahead"
    assert recipes.ablated(recipes.WHITENED_CNN, []) is recipes.WHITENED_CNN
    with pytest.raises(SaehError, match="unknown ingredient.*dropout.*known: whitening"):
        recipes.ablated(recipes.WHITENED_CNN, ["dropout"])


def test_initialise_fits_the_whitening_and_can_drop_the_identity_start():
    from saeh.models import build_saeh

    images = np.random.default_rng(0).integers(0, 256, (50, 16, 16, 3), dtype=np.uint8)

    def start(**kwargs):
        keras.utils.set_random_seed(0)
        model = build_saeh((16, 16, 3), 4, hash_bits=8, encoder="whitened_cnn", gamma=0.0)
        whitening = model.get_layer("encoder_whiten")
        unit = whitening.kernel.numpy().copy()
        fitted = whitened_cnn.initialise(model, images, seed=0, **kwargs)
        return model, fitted, not np.array_equal(unit, whitening.kernel.numpy())

    model, fitted, changed = start()
    assert fitted == 1 and changed
    conv = model.get_layer("encoder_group2_conv2").kernel.numpy()  # 256 -> 256: all identity at the start
    assert np.array_equal(conv[1, 1], np.eye(256)) and np.count_nonzero(conv) == 256
    model, fitted, changed = start(whiten=False, identity=False)
    assert fitted == 0 and not changed
    conv = model.get_layer("encoder_group2_conv2").kernel.numpy()
    assert np.count_nonzero(conv) == conv.size and np.abs(conv).max() <= 1 / np.sqrt(9 * 256)


# ----------------------------------------------------------------------------------- the methods' optimisers, schedules
# References written from torch.optim's documented updates and from each source's own schedule code, not from ours.

def torch_adam_steps(weights, gradients, rate, beta_1, beta_2, eps, weight_decay):
    """torch.optim.Adam (amsgrad off), its documented algorithm: g = g + wd * w; m = b1 m + (1 - b1) g;
    v = b2 v + (1 - b2) g^2; m_hat = m / (1 - b1^t); v_hat = v / (1 - b2^t); w -= lr m_hat / (sqrt(v_hat) + eps)."""
    w, m, v = weights.astype(np.float64), 0.0, 0.0
    for t, gradient in enumerate(gradients, start=1):
        g = gradient + weight_decay * w
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        w = w - rate * (m / (1 - beta_1 ** t)) / (np.sqrt(v / (1 - beta_2 ** t)) + eps)
    return w


def torch_rmsprop_steps(weights, gradients, rate, alpha, eps, weight_decay):
    """torch.optim.RMSprop (momentum 0, centered off), its documented algorithm: g = g + wd * w;
    v = alpha v + (1 - alpha) g^2; w -= lr g / (sqrt(v) + eps)."""
    w, v = weights.astype(np.float64), 0.0
    for gradient in gradients:
        g = gradient + weight_decay * w
        v = alpha * v + (1 - alpha) * g * g
        w = w - rate * g / (np.sqrt(v) + eps)
    return w


def two_layer_model():
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(2, name="body")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(hidden))


def apply_steps(optimizer, variables, gradients):
    optimizer.build(variables)
    for step in gradients:
        optimizer.apply([g.astype(np.float32) for g in step], variables)


@pytest.mark.parametrize("family", ["adam", "rmsprop"])
def test_adam_and_rmsprop_take_torchs_steps_with_coupled_decay_and_layer_rates(family):
    """Each family against torch's documented update, a torch parameter group's lr standing for a layer rate (the
    whole step scales, decay included): the body at 0.01x (CSQ's backbone), the head at 1x."""
    model = two_layer_model()
    body, head = model.get_layer("body").kernel, model.get_layer("head").kernel
    rng = np.random.default_rng(0)
    starts = [rng.normal(size=(3, 2)), rng.normal(size=(2, 2))]
    body.assign(starts[0])
    head.assign(starts[1])
    gradients = [[rng.normal(size=(3, 2)), rng.normal(size=(2, 2))] for _ in range(7)]
    rates = (("head/", 1.0), ("", 0.01))
    if family == "adam":
        optimizer = optimizers.RecipeAdam(learning_rate=1e-2, coupled_weight_decay=0.05, layer_rates=rates)
        reference = lambda start, grads, rate: torch_adam_steps(start, grads, rate, 0.9, 0.999, 1e-8, 0.05)
    else:
        optimizer = optimizers.RecipeRMSprop(learning_rate=1e-2, coupled_weight_decay=0.05, layer_rates=rates)
        reference = lambda start, grads, rate: torch_rmsprop_steps(start, grads, rate, 0.99, 1e-8, 0.05)
    apply_steps(optimizer, [body, head], gradients)
    np.testing.assert_allclose(body.numpy(), reference(starts[0], [g[0] for g in gradients], 1e-4), rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_allclose(head.numpy(), reference(starts[1], [g[1] for g in gradients], 1e-2), rtol=1e-5,
                               atol=1e-7)
    assert type(optimizer).from_config(optimizer.get_config()).get_config() == optimizer.get_config()


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_layer_rates_scale_a_layers_whole_step_as_a_torch_parameter_group(momentum, nesterov):
    """HashNet's hash layer at 10x (its parameter group's lr 10 x the scheduled rate): decay and momentum included."""
    model = two_layer_model()
    body, head = model.get_layer("body").kernel, model.get_layer("head").kernel
    rng = np.random.default_rng(1)
    starts = [rng.normal(size=(3, 2)), rng.normal(size=(2, 2))]
    body.assign(starts[0])
    head.assign(starts[1])
    gradients = [[rng.normal(size=(3, 2)), rng.normal(size=(2, 2))] for _ in range(5)]
    optimizer = optimizers.RecipeSGD(learning_rate=0.01, momentum=momentum, nesterov=nesterov,
                                  coupled_weight_decay=5e-4, layer_rates=(("head/", 10.0),))
    apply_steps(optimizer, [body, head], gradients)
    np.testing.assert_allclose(body.numpy(), torch_sgd_steps(starts[0], [g[0] for g in gradients], [0.01] * 5,
                                                             momentum, nesterov, 5e-4), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(head.numpy(), torch_sgd_steps(starts[1], [g[1] for g in gradients], [0.1] * 5,
                                                             momentum, nesterov, 5e-4), rtol=1e-5, atol=1e-7)


def adsh_rates(base, outer_iterations):
    """ADSH_CIFAR_10.py: after training outer iteration `iter` (0-based), `adjusting_learning_rate` divides the rate
    by 10 when iter is in [10, 20, 30, 40, 50]. The rate each outer iteration trains at."""
    rate, rates = base, []
    for iteration in range(outer_iterations):
        rates.append(rate)
        if iteration in [10, 20, 30, 40, 50]:
            rate = rate / 10
    return rates


def dpsh_rates(base, epochs):
    """DPSH_CIFAR_10.py: after epoch `epoch`, `AdjustLearningRate` sets lr = learning_rate * 0.1 ** (epoch // 50)."""
    rate, rates = base, []
    for epoch in range(epochs):
        rates.append(rate)
        rate = base * (0.1 ** (epoch // 50))
    return rates


def csq_rates(base, epochs):
    """CSQ train.py: before epoch `epoch`, `adjust_learning_rate` sets lr = args.lr * 0.7 ** (epoch // 10)."""
    return [base * 0.7 ** (epoch // 10) for epoch in range(epochs)]


def hashnet_rates(base, iterations):
    """HashNet lr_schedule.py `step_lr_scheduler`, before iteration i: lr = init_lr * gamma ** (i // step)."""
    return [base * 0.5 ** (i // 2000) for i in range(iterations)]


def torch_cosine_rates(base, eta_min, epochs):
    """torch's CosineAnnealingLR, its documented recursion, stepped after each epoch (T_max = epochs):
    eta_(t+1) = eta_min + (eta_t - eta_min) (1 + cos(pi (t + 1) / T)) / (1 + cos(pi t / T))."""
    rates = [base]
    for t in range(epochs - 1):
        rates.append(eta_min + (rates[-1] - eta_min) * (1 + np.cos(np.pi * (t + 1) / epochs))
                     / (1 + np.cos(np.pi * t / epochs)))
    return rates


def per_epoch_rates(recipe, base, epochs, steps_per_epoch=3):
    """The rate of each epoch's first step, by `Recipe.rate_at` and by the schedule inside the optimiser; they must
    agree at every step of the run."""
    schedule = optimizers.make_schedule(recipe, base, steps_per_epoch, epochs)
    total = steps_per_epoch * epochs
    inside = [float(schedule(step)) for step in range(total)]
    outside = [recipe.rate_at(step, steps_per_epoch, epochs, base) for step in range(total)]
    np.testing.assert_allclose(inside, outside, rtol=1e-4)  # the optimiser's schedule computes in float32
    return outside[::steps_per_epoch]


def test_the_methods_schedules_match_their_sources_at_the_sources_lengths():
    import baselines

    np.testing.assert_allclose(per_epoch_rates(baselines.get("adsh").recipe, 1e-3, 50), adsh_rates(1e-3, 50),
                               rtol=1e-6)
    np.testing.assert_allclose(per_epoch_rates(baselines.get("dpsh").recipe, 0.05, 150), dpsh_rates(0.05, 150),
                               rtol=1e-6)
    np.testing.assert_allclose(per_epoch_rates(baselines.get("csq").recipe, 1e-3, 90), csq_rates(1e-3, 90), rtol=1e-6)
    np.testing.assert_allclose(per_epoch_rates(baselines.get("shc").recipe, 1e-4, 100),
                               torch_cosine_rates(1e-4, 1e-7, 100), rtol=1e-5)
    # HashNet's schedule is per iteration: 10,000 of them (100 epochs of 100 steps).
    recipe = baselines.get("hashnet").recipe
    schedule = optimizers.make_schedule(recipe, 3e-4, 100, 100)
    steps = np.arange(0, 10000, 7)
    np.testing.assert_allclose([float(schedule(step)) for step in steps], np.asarray(hashnet_rates(3e-4, 10000))[steps],
                               rtol=1e-6)


def test_a_shorter_run_keeps_the_drops_at_their_fractions():
    import baselines

    recipe = baselines.get("dpsh").recipe  # 150 epochs, drops from epochs 51 and 101
    rates = per_epoch_rates(recipe, 0.05, 12)
    assert rates == pytest.approx([0.05] * 4 + [0.005] * 4 + [0.0005] * 4)  # round(12 x 51/150) = 4, 12 x 101/150 -> 8
    assert recipe.drop_steps(10, 1) == [10, 10]  # a one-epoch run never drops before its end


def test_the_original_recipe_builds_keras_sgd_and_saeh_trains_with_it():
    from saeh import registry

    for name in ("saeh", "saeh-minus"):
        assert registry.get(name).recipe is recipes.ORIGINAL
    optimizer = optimizers.make_optimizer(recipes.ORIGINAL, 0.1, 10, 12)
    assert type(optimizer) is keras.optimizers.SGD
    assert (optimizer.momentum, optimizer.nesterov) == (0.9, True)
    assert float(optimizer.learning_rate) == pytest.approx(0.1)
    # At another starting rate (DSH's 0.01) it is still the original's optimiser, and run.json names no recipe.
    dsh = registry.get("dsh").recipe
    assert dsh.trains_as_original and type(optimizers.make_optimizer(dsh, 0.01, 10, 12)) is keras.optimizers.SGD


def test_adsh_dpsh_and_hashnet_register_their_authors_recipes():
    import baselines

    adsh = baselines.get("adsh").recipe
    assert (adsh.optimizer, adsh.momentum, adsh.learning_rate, adsh.weight_decay, adsh.drop_factor) == (
        "sgd", 0.0, 1e-3, 5e-4, 0.1)
    assert isinstance(optimizers.make_optimizer(adsh, 1e-3, 10, 50), optimizers.RecipeSGD)
    assert optimizers.make_optimizer(adsh, 1e-3, 10, 50).momentum == 0.0
    assert baselines.get("dsah").recipe.optimizer == "sgd" and baselines.get("dsah").recipe.momentum == 0.0
    dpsh = baselines.get("dpsh").recipe
    assert (dpsh.momentum, dpsh.weight_decay, dpsh.batch_size, dpsh.learning_rate) == (0.0, 1e-5, 128, 0.05)
    hashnet = baselines.get("hashnet").recipe
    assert (hashnet.momentum, hashnet.nesterov, hashnet.weight_decay, hashnet.learning_rate) == (0.9, True, 5e-4, 3e-4)
    assert hashnet.layer_rates == (("hash_z/", 10.0),) and hashnet.drop_factor == 0.5
    csq, shc = baselines.get("csq").recipe, baselines.get("shc").recipe
    assert (csq.optimizer, csq.learning_rate, csq.layer_rates[-1]) == ("adam", 1e-3, ("", 0.01))
    assert (shc.optimizer, shc.learning_rate, shc.weight_decay, shc.rmsprop_alpha) == ("rmsprop", 1e-4, 1e-5, 0.99)
    for name in baselines.names():  # every deep method names where its recipe comes from
        method = baselines.get(name)
        if method.kind == "deep":
            assert method.recipe.source, name


def test_a_methods_recipe_builds_its_optimiser_and_drops_the_layers_own_decay():
    from saeh import registry
    from saeh.methods import ModelSpec
    from saeh.training.compiled_model import build_compiled

    spec = ModelSpec((16, 16, 3), 4, hash_bits=12, stack_num=1)
    dpsh = registry.get("dpsh")
    model = build_compiled(registry.get("hashnet"), {}, spec, epochs=12, steps_per_epoch=10)
    optimizer = model.optimizer
    assert isinstance(optimizer, optimizers.RecipeSGD) and optimizer.nesterov and optimizer.momentum == 0.9
    assert optimizer.coupled_weight_decay == 5e-4 and optimizer.layer_rates == [("hash_z/", 10.0)]
    assert float(optimizer.learning_rate) == pytest.approx(3e-4)
    assert all(variable.regularizer is None for variable in model.weights)  # decay is the optimiser's alone
    original = build_compiled(registry.get("saeh"), {}, spec, epochs=12, steps_per_epoch=10)
    assert type(original.optimizer) is keras.optimizers.SGD  # SAEH: Keras's own SGD, its L2 in the layers
    assert any(getattr(variable, "regularizer", None) is not None for variable in original.weights)
    csq = build_compiled(registry.get("csq"), {}, spec, epochs=12, steps_per_epoch=10).optimizer
    shc_recipe = registry.get("shc").recipe
    assert isinstance(csq, optimizers.RecipeAdam)
    assert isinstance(optimizers.make_optimizer(shc_recipe, 1e-4, 10, 12), optimizers.RecipeRMSprop)
    # The whitened_cnn encoder's own recipe replaces the method's, for every method.
    assert recipes.for_method(registry.get("dpsh"), "whitened_cnn") is recipes.WHITENED_CNN
    assert recipes.for_method(registry.get("dpsh"), "resnet_cifar") is dpsh.recipe


def test_run_json_names_a_methods_recipe_unless_it_trains_as_the_original(tmp_path):
    import json

    from helpers import tiny_split
    from saeh import registry, training

    split = tiny_split()
    for name, recorded in (("dsh", None), ("dlbhc", "dlbhc")):
        training.train(registry.get(name), split, 4, str(tmp_path / name), hash_bits=8, stack_num=1, epochs=1,
                       batch_size=16, verbose=0, log=lambda message: None)
        with open(tmp_path / name / "run.json") as handle:
            assert json.load(handle).get("recipe") == recorded, name
