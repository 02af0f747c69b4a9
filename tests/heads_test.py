"""Tests for localgrad.heads."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from localgrad import heads, losses

NUM_CLASSES = 5
MAP_SHAPE = (8, 8, 16)

# Feature shapes each head claims to take (besides MAP_SHAPE).
CLAIMED_SHAPES = {
    "mlp_sr": [(1, 1, 4), (7, 7, 4), (32, 32, 4), (6, 3, 4)],
    "mlp": [(1, 1, 4), (3, 3, 4), (12,)],
    "cnn": [(2, 2, 4), (7, 7, 4)],
    "cnn1": [(1, 1, 4), (7, 7, 4), (6, 3, 4)],
    "light1": [(1, 1, 8), (2, 2, 8), (7, 7, 8)],
    "light2": [(1, 1, 8), (2, 2, 8), (7, 7, 8)],
    "light3": [(1, 1, 8), (2, 2, 8)],
    "light4": [(1, 1, 2), (2, 2, 8), (9, 9, 8)],
    "predsim": [(2, 2, 4), (7, 7, 4), (2, 2, 600)],
    "linear": [(1, 1, 4), (12,)],
}


def _sublayers(layer, kind):
    """The layers of type `kind` inside `layer`, depth first, in order.

    Walks the layer's attributes (and lists of layers), since Keras 3 has
    no public listing of a plain layer's sublayers.
    """
    found = []
    for value in vars(layer).values():
        children = value if isinstance(value, (list, tuple)) else [value]
        for child in children:
            if isinstance(child, keras.layers.Layer) and child is not layer:
                if isinstance(child, kind) and child not in found:
                    found.append(child)
                found.extend(
                    sub for sub in _sublayers(child, kind) if sub not in found
                )
    return found


def _features(shape, batch=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch,) + tuple(shape)).astype("float32")


def _labels(batch=4):
    return np.arange(batch) % NUM_CLASSES


def _train_bn_statistics(head, features):
    """Moves BatchNorm statistics away from their initial values."""
    for _ in range(2):
        head(features, training=True)


def test_head_names_are_the_methods_heads():
    assert set(heads.HEAD_NAMES) == {
        "mlp_sr",
        "mlp",
        "cnn",
        "cnn1",
        "light1",
        "light2",
        "light3",
        "light4",
        "predsim",
        "linear",
    }


@pytest.mark.parametrize("name", heads.HEAD_NAMES)
def test_builds_on_a_map_and_outputs_logits(name):
    head = heads.build(name, MAP_SHAPE, NUM_CLASSES)
    assert head.built
    assert head.head_name == name
    assert head.weights, "weights must exist right after build"
    logits = head(_features(MAP_SHAPE, batch=3))
    assert tuple(logits.shape) == (3, NUM_CLASSES)
    assert head.compute_output_shape((3,) + MAP_SHAPE) == (3, NUM_CLASSES)


@pytest.mark.parametrize(
    "name,shape",
    [
        (name, shape)
        for name, shapes in CLAIMED_SHAPES.items()
        for shape in shapes
    ],
)
def test_builds_on_claimed_shapes(name, shape):
    head = heads.build(name, shape, NUM_CLASSES)
    logits = head(_features(shape), training=True)
    assert tuple(logits.shape) == (4, NUM_CLASSES)
    assert np.all(np.isfinite(logits))


@pytest.mark.parametrize("name", heads.HEAD_NAMES)
def test_every_trainable_weight_gets_a_gradient(name):
    head = heads.build(name, MAP_SHAPE, NUM_CLASSES)
    features, labels = _features(MAP_SHAPE), _labels()
    with tf.GradientTape() as tape:
        if hasattr(head, "local_loss"):
            loss, _ = head.local_loss(features, labels, training=True)
        else:
            logits = head(features, training=True)
            loss = losses.cross_entropy(logits, labels)
    gradients = tape.gradient(loss, head.trainable_weights)
    assert head.trainable_weights
    for weight, gradient in zip(head.trainable_weights, gradients, strict=True):
        assert gradient is not None, weight.path
        # Redundant weights (e.g. a bias right before a BatchNorm) get
        # round-off gradients of ~1e-8; real ones get >= 1e-4 here.
        assert float(tf.reduce_max(tf.abs(gradient))) > 1e-6, weight.path


@pytest.mark.parametrize(
    "depth,layout",
    [
        (1, []),
        (2, [(4, 4, 1)]),
        (3, [(4, 4, 1), (4, 6, 2)]),
        (4, [(4, 4, 1), (4, 6, 2), (6, 6, 1)]),
    ],
)
def test_light_head_blocks_are_the_authors(depth, layout):
    # P = 16 // 4 = 4: stride 1 first, stride 2 on odd blocks widening by
    # P // 2 = 2, residual on the stride-1 blocks of unchanged width.
    head = heads.build(f"light{depth}", MAP_SHAPE, NUM_CLASSES)
    blocks = _sublayers(head, heads.InvertedResidual)
    assert blocks == head.blocks
    got = [(b.input_channels, b.filters, b.strides) for b in blocks]
    assert got == layout
    assert [b.use_residual for b in blocks] == [s == 1 for *_, s in layout]


def test_light_head_keeps_stride_one_on_a_map_too_small_to_halve():
    # 2x2 -> 1x1 after the depthwise conv: block 1 cannot halve it.
    head = heads.build("light4", (2, 2, 16), NUM_CLASSES)
    assert [(b.filters, b.strides) for b in head.blocks] == [
        (4, 1),
        (4, 1),
        (4, 1),
    ]


@pytest.mark.parametrize(
    "depth,count", [(1, 6793), (2, 7205), (3, 8679), (4, 9393)]
)
def test_light_head_parameter_count_matches_a_hand_count(depth, count):
    # (8, 8, 16) in, 5 classes, width 1 (512 last channels), P = 4. Every
    # BN holds 4 values per channel (gamma, beta, mean, variance), the
    # blocks' projection BN 3 (no beta).
    # Stem: 1x1 conv 16*4 + BN 4*4 + depthwise 9*4 + BN 4*4 = 132.
    # Block P -> P, stride 1: 1x1 4*16 + BN 16*4 + depthwise 9*16 + BN 16*4
    # + 1x1 16*4 + BN 4*3 = 412. Block 4 -> 6: 64 + 64 + 144 + 64 + 16*6
    # + 6*3 = 450. Block 6 -> 6: 6*24 + 24*4 + 9*24 + 24*4 + 24*6 + 6*3
    # = 714. Tail: 1x1 conv c*512 + BN 512*4 + Dense 512*5 + 5.
    def tail(channels):
        return channels * 512 + 512 * 4 + 512 * 5 + 5

    blocks = {1: 0, 2: 412, 3: 412 + 450, 4: 412 + 450 + 714}[depth]
    last_channels = {1: 4, 2: 4, 3: 6, 4: 6}[depth]
    assert count == 132 + blocks + tail(last_channels)
    head = heads.build(f"light{depth}", MAP_SHAPE, NUM_CLASSES)
    assert head.count_params() == count


def test_light_head_reduction_one_keeps_every_channel():
    # (8, 8, 16) in, P = C = 16: 1x1 conv 16*16 + BN 16*4 + depthwise 9*16
    # + BN 16*4 = 528, then the tail on 16 channels.
    head = heads.build("light1", MAP_SHAPE, NUM_CLASSES, light_reduction=1)
    assert head.reduce.filters == 16
    assert head.count_params() == 528 + 16 * 512 + 512 * 4 + 512 * 5 + 5
    clone = heads.LightHead.from_config(head.get_config())
    assert clone.reduce.filters == 16


def test_inverted_residual_uses_relu_not_relu6():
    block = heads.InvertedResidual(input_channels=1, filters=1, expansion=1)
    block.build((None, 1, 1, 1))
    block.expand.kernel.assign([[[[10.0]]]])
    block.depthwise.kernel.assign(np.full((3, 3, 1, 1), 1.0))
    block.project.kernel.assign([[[[1.0]]]])
    # Inference mode with unit statistics: every BN is the identity (up to
    # epsilon), so the output is x + relu(relu(10 x)): 1 + 10 for x = 1,
    # where ReLU6 would give 1 + 6.
    out = block(np.ones((1, 1, 1, 1), "float32"), training=False)
    np.testing.assert_allclose(out, [[[[11.0]]]], rtol=1e-4)


BATCH_NORM_HEADS = [
    "mlp_sr",
    "mlp",
    "cnn",
    "light1",
    "light2",
    "light3",
    "light4",
    "cnn1",
]


def _batch_norms(layer):
    return _sublayers(layer, keras.layers.BatchNormalization)


@pytest.mark.parametrize("name", heads.HEAD_NAMES)
def test_every_head_batch_norm_has_the_units_momentum(name):
    head = heads.build(name, MAP_SHAPE, NUM_CLASSES)
    norms = _batch_norms(head)
    assert bool(norms) == (name in BATCH_NORM_HEADS)
    assert head.bn_momentum == 0.9
    for norm in norms:
        assert norm.momentum == 0.9, norm.path
        assert norm.epsilon == 1e-5, norm.path
    custom = heads.build(name, MAP_SHAPE, NUM_CLASSES, bn_momentum=0.99)
    assert all(norm.momentum == 0.99 for norm in _batch_norms(custom))
    clone = type(custom).from_config(custom.get_config())
    assert all(norm.momentum == 0.99 for norm in _batch_norms(clone))


def test_inverted_residual_shapes():
    block = heads.InvertedResidual(input_channels=4, filters=6, strides=2)
    assert tuple(block(_features((5, 5, 4))).shape) == (4, 3, 3, 6)
    assert block.expand.filters == 16  # expansion 4


@pytest.mark.parametrize(
    "width_mult,channels", [(1.0, 512), (0.5, 256), (0.25, 128)]
)
def test_width_mult_scales_light_last_conv(width_mult, channels):
    head = heads.build("light2", (4, 4, 8), NUM_CLASSES, width_mult)
    assert head.last.filters == channels
    assert head.last.kernel.shape[-1] == channels
    assert head.classifier.kernel.shape[0] == channels


@pytest.mark.parametrize(
    "size,first,second", [(32, 8, 2), (8, 2, 2), (7, 2, 2), (4, 1, 1)]
)
def test_mlp_sr_pooling_sizes(size, first, second):
    head = heads.build("mlp_sr", (size, size, 3), NUM_CLASSES)
    assert head.first_pool.output_size == (first, first)
    assert head.second_pool.output_size == (second, second)
    assert head.dense_layers[0].units == 3 * second * second
    assert head.conv_layers[0].filters == 3


def test_adaptive_pool_matches_hand_computation():
    x = _features((7, 5, 2), batch=2)
    pooled = np.asarray(heads.AdaptiveAveragePooling2D((2, 3))(x))
    # Bins: 7 -> 2 is rows [0, 4) and [3, 7); 5 -> 3 is cols [0, 2),
    # [1, 4) and [3, 5).
    row_bins = [(0, 4), (3, 7)]
    col_bins = [(0, 2), (1, 4), (3, 5)]
    expected = np.zeros((2, 2, 3, 2), np.float32)
    for i, (r0, r1) in enumerate(row_bins):
        for j, (c0, c1) in enumerate(col_bins):
            expected[:, i, j] = x[:, r0:r1, c0:c1].mean(axis=(1, 2))
    np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-6)


def test_adaptive_pool_equals_average_pooling_when_divisible():
    x = _features((8, 6, 3), batch=2)
    adaptive = heads.AdaptiveAveragePooling2D((4, 2))(x)
    plain = keras.layers.AveragePooling2D((2, 3))(x)
    np.testing.assert_allclose(adaptive, plain, rtol=1e-5, atol=1e-6)


def test_adaptive_pool_rejects_growing():
    with pytest.raises(ValueError, match="only shrink"):
        heads.AdaptiveAveragePooling2D(3)(_features((2, 2, 1)))


@pytest.mark.parametrize("name", ["linear", "mlp"])
def test_flat_features_work_for_linear_and_mlp(name):
    head = heads.build(name, (12,), NUM_CLASSES)
    assert tuple(head(_features((12,))).shape) == (4, NUM_CLASSES)


def test_mlp_on_flat_features_is_three_dense_bn_relu_and_a_dense():
    head = heads.build("mlp", (12,), NUM_CLASSES)
    kinds = [type(layer).__name__ for layer in head.dense_layers]
    assert kinds == ["Dense", "BatchNormalization", "ReLU"] * 3
    assert head.classifier.units == NUM_CLASSES
    assert head.pool is None
    assert head.hidden_units == 12


def test_mlp_hidden_width_is_the_capped_flat_size():
    assert heads.build("mlp", (8, 8, 16), 2).hidden_units == 64
    assert heads.build("mlp", (1, 1, 16), 2).hidden_units == 16
    assert heads.build("mlp", (4, 4, 512), 2).hidden_units == 1024


@pytest.mark.parametrize(
    "name", [n for n in heads.HEAD_NAMES if n not in ("linear", "mlp")]
)
def test_flat_features_raise_for_spatial_heads(name):
    with pytest.raises(ValueError) as error:
        heads.build(name, (12,), NUM_CLASSES)
    message = str(error.value)
    assert f"'{name}'" in message
    assert "(12,)" in message
    assert "'linear' or 'mlp'" in message


@pytest.mark.parametrize("name", ["cnn", "predsim"])
def test_too_small_map_raises(name):
    with pytest.raises(ValueError) as error:
        heads.build(name, (1, 1, 8), NUM_CLASSES)
    message = str(error.value)
    assert f"'{name}'" in message and "(1, 1, 8)" in message
    assert "'linear'" in message


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError) as error:
        heads.build("mlp-sr", MAP_SHAPE, NUM_CLASSES)
    assert "'mlp-sr'" in str(error.value)
    for name in heads.HEAD_NAMES:
        assert name in str(error.value)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"num_classes": 0}, "num_classes"),
        ({"input_shape": (8, 0, 4)}, "'light2' needs .* positive"),
        ({"input_shape": (8, 8)}, r"\(H, W, C\)"),
        ({"width_mult": 0.0}, "width_mult"),
        ({"light_reduction": 0}, "reduction to be an integer >= 1"),
        ({"bn_momentum": 1.0}, "bn_momentum"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    arguments = {"input_shape": MAP_SHAPE, "num_classes": NUM_CLASSES}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        heads.build("light2", **arguments)


def test_mixed_precision_heads_compute_in_float16_and_lose_in_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        head = heads.build("predsim", MAP_SHAPE, NUM_CLASSES)
        light = heads.build("light2", MAP_SHAPE, NUM_CLASSES)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    features = _features(MAP_SHAPE)
    assert light(features).dtype == "float16"
    assert light.blocks[0].expand.compute_dtype == "float16"
    loss, logits = head.local_loss(features, _labels())
    assert logits.dtype == "float16"
    assert loss.dtype == "float32" and np.isfinite(float(loss))


def test_predsim_prediction_branch_pools_to_the_limit():
    head = heads.build("predsim", (16, 16, 8), NUM_CLASSES)
    # 16x16x8 = 2048 values -> one 2x2 pooling -> 512 <= 512.
    assert len(head.pools) == 1
    assert head.classifier.kernel.shape[0] == 512
    # With a limit of 256: 2048 -> 512 -> 128, two poolings.
    narrow = heads.build("predsim", (16, 16, 8), NUM_CLASSES, width_mult=0.5)
    assert len(narrow.pools) == 2
    assert narrow.classifier.kernel.shape[0] == 128
    assert narrow.similarity_conv.filters == 8
    assert narrow.similarity_conv.use_bias is False


def test_predsim_local_loss_is_predsim_loss_of_its_branches():
    head = heads.build("predsim", MAP_SHAPE, NUM_CLASSES)
    features, labels = _features(MAP_SHAPE), _labels()
    weights = np.array([1.0, 0.0, 2.0, 1.0], np.float32)
    loss, logits = head.local_loss(features, labels, sample_weight=weights)
    np.testing.assert_allclose(logits, head(features), rtol=1e-6)
    expected = losses.predsim_loss(
        head(features),
        head.similarity_conv(features),
        labels,
        NUM_CLASSES,
        beta=0.99,
        sample_weight=weights,
    )
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    assert loss.shape == ()
    assert not any(
        hasattr(heads.build(n, MAP_SHAPE, 2), "local_loss")
        for n in heads.HEAD_NAMES
        if n != "predsim"
    )


@pytest.mark.parametrize("name", heads.HEAD_NAMES)
def test_config_round_trip(name):
    head = heads.build(name, MAP_SHAPE, NUM_CLASSES, width_mult=0.5)
    features = _features(MAP_SHAPE)
    _train_bn_statistics(head, features)
    clone = type(head).from_config(head.get_config())
    assert clone.built
    clone.set_weights(head.get_weights())
    np.testing.assert_allclose(
        clone(features), head(features), rtol=1e-5, atol=1e-6
    )
    assert clone.get_config() == head.get_config()


@pytest.mark.numerics
@pytest.mark.parametrize("mode", ["tf_function", "jit_compile"])
def test_compiled_call_matches_eager(mode):
    for name in ("mlp_sr", "light3", "predsim"):
        head = heads.build(name, (7, 7, 8), NUM_CLASSES)
        features = _features((7, 7, 8))
        run = tf.function(
            lambda x, h=head: h(x), jit_compile=mode == "jit_compile"
        )
        np.testing.assert_allclose(
            run(features), head(features), rtol=1e-4, atol=1e-5
        )


@pytest.mark.numerics
@pytest.mark.parametrize("mode", ["tf_function", "jit_compile"])
def test_compiled_predsim_local_loss_matches_eager(mode):
    head = heads.build("predsim", (7, 7, 8), NUM_CLASSES)
    features, labels = _features((7, 7, 8)), _labels()
    weights = np.array([1.0, 0.0, 1.0, 2.0], np.float32)
    run = tf.function(
        lambda x, y, w: head.local_loss(x, y, sample_weight=w)[0],
        jit_compile=mode == "jit_compile",
    )
    eager, _ = head.local_loss(features, labels, sample_weight=weights)
    np.testing.assert_allclose(run(features, labels, weights), eager, rtol=1e-4)


def test_model_with_every_head_round_trips_through_keras_file(tmp_path):
    features = _features(MAP_SHAPE)
    inputs = keras.Input(MAP_SHAPE)
    built = [
        heads.build(name, MAP_SHAPE, NUM_CLASSES, layer_name=f"head_{name}")
        for name in heads.HEAD_NAMES
    ]
    for head in built:
        _train_bn_statistics(head, features)
    model = keras.Model(inputs, [head(inputs) for head in built])
    path = tmp_path / "heads.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    for expected, actual in zip(model(features), loaded(features), strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    for head in built:
        twin = loaded.get_layer(head.name)
        assert type(twin) is type(head)
    predsim = loaded.get_layer("head_predsim")
    np.testing.assert_allclose(
        predsim.local_loss(features, _labels())[0],
        model.get_layer("head_predsim").local_loss(features, _labels())[0],
        rtol=1e-5,
    )


def test_heads_a_greedy_model_and_a_supernet_build_use_the_units_momentum():
    import localgrad
    from localgrad.search import RelaxedSupernet

    network = localgrad.models.build("vgg11", (16, 16, 1), 3, width=0.0625)
    model = localgrad.GreedyModel(network, num_blocks=3, heads="mlp_sr")
    supernet = RelaxedSupernet(network, heads=("light2", "mlp"))
    built = list(model.heads) + [
        head for unit in supernet.candidate_heads for head in unit
    ]
    norms = [norm for head in built for norm in _batch_norms(head)]
    assert len(norms) > 20
    assert {norm.momentum for norm in norms} == {0.9}
