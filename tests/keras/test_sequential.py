"""The Keras-style API: the post's model, Keras's numbers and messages, fit/evaluate/predict."""

import runpy
from pathlib import Path

import numpy as np
import pytest
import torch

import mlrepro.optim
from mlrepro.engine import Callback as EngineCallback
from mlrepro.keras import Sequential, callbacks, losses, optimizers, to_categorical
from mlrepro.keras.layers import (
    Activation,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Input,
    MaxPooling2D,
    Reshape,
)
from mlrepro.keras.utils import set_random_seed
from mlrepro.nn import create_model

REPO = Path(__file__).resolve().parents[2]


def blog_model(compile_kw=None) -> Sequential:
    model = Sequential()
    model.add(Conv2D(32, (5, 5), padding="same"), input_shape=(28, 28, 1))  # the post's spelling
    model.add(MaxPooling2D(padding="same"))
    model.add(Conv2D(64, (5, 5), padding="same"))
    model.add(MaxPooling2D(padding="same"))
    model.add(Flatten())
    model.add(Dense(1024, activation="relu"))
    model.add(Dropout(0.5))
    model.add(Dense(256, activation="relu"))
    model.add(Dropout(0.5))
    model.add(Dense(10, activation="softmax"))
    if compile_kw is not None:
        model.compile(**compile_kw)
    return model


def toy_images(n=120, seed=0):
    """8×8 one-channel images whose class (0..3) is the bright quadrant: learnable in a few
    epochs."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.random((n, 8, 8, 1), dtype=np.float32) * 0.3
    for i, c in enumerate(y):
        r, q = divmod(int(c), 2)
        x[i, 4 * r : 4 * r + 4, 4 * q : 4 * q + 4] += 0.7
    return x, y


def toy_model(loss="sparse_categorical_crossentropy", **compile_kw) -> Sequential:
    set_random_seed(0)
    model = Sequential(
        [
            Input((8, 8, 1)),
            Conv2D(8, 3, padding="same", activation="relu"),
            MaxPooling2D(),
            Flatten(),
            Dense(16, activation="relu"),
            Dense(4, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=compile_kw.pop("optimizer", optimizers.Adam(0.01)),
        loss=loss,
        metrics=["accuracy"],
        device="cpu",
        **compile_kw,
    )
    return model


# --- building ---
def test_blog_convnet_summary_matches_keras_parameter_counts(capsys):
    model = blog_model()
    model.summary()
    out = capsys.readouterr().out
    # Keras 3's summary() of the same stack: per-layer and total parameter counts.
    expected = {
        "conv2d (Conv2D)": ("(None, 28, 28, 32)", "832"),
        "max_pooling2d (MaxPooling2D)": ("(None, 14, 14, 32)", "0"),
        "conv2d_1 (Conv2D)": ("(None, 14, 14, 64)", "51,264"),
        "max_pooling2d_1 (MaxPooling2D)": ("(None, 7, 7, 64)", "0"),
        "flatten (Flatten)": ("(None, 3136)", "0"),
        "dense (Dense)": ("(None, 1024)", "3,212,288"),
        "dropout (Dropout)": ("(None, 1024)", "0"),
        "dense_1 (Dense)": ("(None, 256)", "262,400"),
        "dropout_1 (Dropout)": ("(None, 256)", "0"),
        "dense_2 (Dense)": ("(None, 10)", "2,570"),
    }
    rows = {
        line.split(")")[0].strip() + ")": line
        for line in out.splitlines()
        if " (" in line and "Layer (type)" not in line and "Model:" not in line
    }
    assert list(rows) == list(expected)
    for name, (shape, params) in expected.items():
        assert shape in rows[name] and rows[name].rstrip().endswith(params)
    assert "Total params: 3,529,354" in out and "Non-trainable params: 0" in out
    assert model.count_params() == 3_529_354
    assert model.count_params() == sum(
        p.numel() for p in create_model("keras_convnet_mnist").parameters()
    )
    assert model.output_shape == (None, 10) and model.input_shape == (None, 28, 28, 1)


def test_forward_takes_channels_last_images_and_flattens_in_keras_order():
    model = blog_model()
    x = torch.rand(3, 28, 28, 1)
    model.net.eval()
    assert model(x).shape == (3, 10)
    # Flatten of a (N, C, H, W) activation gives Keras's (H, W, C) order.
    flat = Sequential([Input((2, 2, 3)), Flatten()])
    img = torch.arange(12.0).reshape(1, 2, 2, 3)  # channels-last, as Keras sees it
    assert torch.equal(flat(img), img.reshape(1, 12))


@pytest.mark.parametrize(
    "layer,in_shape,out_shape",
    [
        (MaxPooling2D(padding="same"), (7, 7, 64), (4, 4, 64)),
        (MaxPooling2D(), (7, 7, 64), (3, 3, 64)),
        (MaxPooling2D(3, strides=1, padding="same"), (5, 5, 2), (5, 5, 2)),
        (Conv2D(4, 3, strides=2, padding="same"), (28, 28, 1), (14, 14, 4)),
        (Conv2D(4, 4, padding="same"), (9, 9, 1), (9, 9, 4)),
        (Conv2D(4, (5, 3)), (28, 28, 2), (24, 26, 4)),
        (Reshape((4, 4, 1)), (16,), (4, 4, 1)),
    ],
)
def test_output_shapes_follow_keras_padding_rules(layer, in_shape, out_shape):
    model = Sequential([Input(in_shape), layer])
    assert model.output_shape == (None, *out_shape)
    out = model(torch.rand(2, *in_shape))
    assert tuple(out.shape[1:]) == (
        (out_shape[2], *out_shape[:2]) if len(out_shape) == 3 else out_shape
    )


def test_same_max_pooling_pads_with_minus_infinity_not_zero():
    model = Sequential([Input((3, 3, 1)), MaxPooling2D(padding="same")])
    out = model(-torch.ones(1, 3, 3, 1))  # all negative: zero padding would leak 0s into the max
    assert torch.equal(out, -torch.ones_like(out))


def test_build_is_deferred_without_input_shape_and_names_are_unique():
    model = Sequential([Dense(8, activation="relu"), Dense(3)])
    assert not model.built
    with pytest.raises(ValueError, match="not yet been built"):
        model.summary()
    model.build((None, 5))
    assert model.output_shape == (None, 3) and model.count_params() == 5 * 8 + 8 + 8 * 3 + 3
    assert [la.name for la in model.layers] == ["dense", "dense_1"]
    with pytest.raises(ValueError, match="unique names"):
        model.add(Dense(2, name="dense"))


# --- Keras-quality errors ---
def test_adding_a_non_layer_is_refused_like_keras():
    with pytest.raises(
        TypeError,
        match=r"Only layers can be added to a Sequential model\. "
        r"Received: 3 \(of type int\)",
    ):
        Sequential().add(3)


@pytest.mark.parametrize(
    "stack,message",
    [
        (
            [Input((28, 28, 1)), Conv2D(32, 5), Dense(10)],
            (
                r"Layer 'dense' \(Dense\) expects flat inputs \(None, features\), "
                r"but it follows layer 'conv2d' \(Conv2D\), which outputs \(None, 24, 24, 32\)\. "
                r"Add a Flatten\(\) layer before it\."
            ),
        ),
        (
            [Input((784,)), Dense(64), Conv2D(8, 3)],
            (
                r"Layer 'conv2d' \(Conv2D\) expects images \(None, height, width, channels\), "
                r"but it follows layer 'dense' \(Dense\), which outputs \(None, 64\)"
            ),
        ),
        (
            [Input((8, 8, 1)), MaxPooling2D(), MaxPooling2D(), MaxPooling2D(), Conv2D(4, 3)],
            (
                r"Layer 'conv2d' \(Conv2D\) with kernel \(3, 3\) and padding 'valid' "
                r"needs inputs of at least 3×3, "
                r"but it follows layer 'max_pooling2d_2' \(MaxPooling2D\), "
                r"which outputs \(None, 1, 1, 1\)"
            ),
        ),
        (
            [Dense(4, input_shape=(28, 28, 1))],
            (
                r"Layer 'dense' \(Dense\) expects flat inputs .* "
                r"the model input of shape \(None, 28, 28, 1\)"
            ),
        ),
    ],
)
def test_shape_mismatch_names_both_layers_and_shapes(stack, message):
    model = Sequential()
    with pytest.raises(ValueError, match=message):
        for layer in stack:
            model.add(layer)
    # The offending layer was not kept, so the model is still usable.
    assert all(la is not stack[-1] for la in model.layers)


@pytest.mark.parametrize(
    "kw,message",
    [
        (
            {"optimizer": "adadeltaa", "loss": "categorical_crossentropy"},
            (
                r"Unknown optimizer: 'adadeltaa'\. "
                r"Valid: 'adadelta', 'adagrad', 'adam', 'adamw', 'rmsprop', 'sgd'"
            ),
        ),
        (
            {"optimizer": "adadelta", "loss": "categorical_crossentropyy"},
            (
                r"Unknown loss: 'categorical_crossentropyy'\. Valid: 'categorical_crossentropy', "
                r"'sparse_categorical_crossentropy', 'mean_squared_error'"
            ),
        ),
        (
            {"optimizer": "adadelta", "loss": "categorical_crossentropy", "metrics": ["acuracy"]},
            (
                r"Unknown metric: 'acuracy'\. Valid: 'accuracy', 'acc', 'categorical_accuracy', "
                r"'sparse_categorical_accuracy'"
            ),
        ),
        ({"optimizer": "adam"}, r"compile\(\) needs a loss"),
    ],
)
def test_unknown_names_list_the_valid_ones(kw, message):
    with pytest.raises(ValueError, match=message):
        blog_model().compile(**kw)


def test_unknown_activation_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown activation: 'reluu'\. Valid: 'linear', 'relu'"):
        Dense(3, activation="reluu")
    with pytest.raises(ValueError, match="Unknown activation"):
        Activation("soft_max")


def test_labels_that_do_not_match_the_loss_say_how_to_fix_them():
    x, y = toy_images(16)
    onehot_model = toy_model("categorical_crossentropy")
    with pytest.raises(
        ValueError,
        match=r"loss 'categorical_crossentropy' expects one-hot labels of "
        r"shape \(None, 4\), but y has shape \(None,\) \(integer class "
        r"labels\)\. Convert them with to_categorical\(y, 4\), or use "
        r"loss='sparse_categorical_crossentropy'",
    ):
        onehot_model.fit(x, y, verbose=0)
    with pytest.raises(
        ValueError,
        match=r"one-hot labels of shape \(None, 4\) to match the model's "
        r"output, but y has shape \(None, 10\)",
    ):
        onehot_model.fit(x, to_categorical(y, 10), verbose=0)
    sparse_model = toy_model("sparse_categorical_crossentropy")
    with pytest.raises(
        ValueError,
        match=r"expects integer class labels of shape \(None,\), but y has "
        r"shape \(None, 4\)\. It looks one-hot: use "
        r"loss='categorical_crossentropy', or pass y.argmax\(axis=1\)",
    ):
        sparse_model.fit(x, to_categorical(y, 4), verbose=0)
    with pytest.raises(ValueError, match=r"expects labels in \[0, 4\) .* ranges over \[0, 7\]"):
        sparse_model.evaluate(x, np.where(y == 3, 7, y), verbose=0)


def test_input_and_data_errors():
    x, y = toy_images(16)
    model = toy_model()
    with pytest.raises(
        ValueError,
        match=r"expected shape=\(None, 8, 8, 1\), found shape=\(None, 1, 8, 8\)\. "
        r"The data looks channels-first",
    ):
        model.fit(np.moveaxis(x, -1, 1), y, verbose=0)
    with pytest.raises(ValueError, match="x has 16 samples but y has 15"):
        model.fit(x, y[:15], verbose=0)
    with pytest.raises(ValueError, match=r"You must call compile\(\)"):
        blog_model().fit(np.zeros((2, 28, 28, 1)), np.zeros((2, 10)), verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(x, y, validation_split=1.5, verbose=0)


# --- training through the engine ---
def test_fit_learns_and_returns_a_keras_history(capsys):
    x, y = toy_images(160)
    model = toy_model()
    history = model.fit(x, y, epochs=6, batch_size=16, validation_split=0.25, verbose=2)
    assert isinstance(history, callbacks.History) and model.history is history
    assert list(history.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert history.epoch == [0, 1, 2, 3, 4, 5]
    assert all(len(v) == 6 for v in history.history.values())
    assert history.history["val_accuracy"][-1] >= 0.9
    out = capsys.readouterr().out
    assert "Epoch 1/6 - " in out and " - val_accuracy: " in out and out.count("\n") == 6
    loss, acc = model.evaluate(x, y, verbose=0)
    assert acc >= 0.9 and loss < history.history["loss"][0]


def test_validation_split_takes_the_last_samples_before_shuffling():
    x, y = toy_images(40)
    a = toy_model().fit(x, y, epochs=2, batch_size=8, validation_split=0.25, verbose=0)
    b = toy_model().fit(
        x[:30], y[:30], epochs=2, batch_size=8, validation_data=(x[30:], y[30:]), verbose=0
    )
    assert a.history == b.history


def test_same_seed_same_history_and_fit_continues_training():
    x, y = toy_images(48)
    h1 = toy_model().fit(x, y, epochs=2, batch_size=8, verbose=0).history
    model = toy_model()
    h2 = model.fit(x, y, epochs=2, batch_size=8, verbose=0).history
    assert h1 == h2
    h3 = model.fit(x, y, epochs=1, batch_size=8, verbose=0)  # Keras: one more epoch, new History
    assert h3.epoch == [0] and model.learner().epoch == 3
    h4 = model.fit(x, y, epochs=5, initial_epoch=3, batch_size=8, verbose=0)  # Keras numbering
    assert h4.epoch == [3, 4] and model.learner().epoch == 5


def test_predict_gives_probabilities_and_evaluate_loss_is_their_cross_entropy():
    x, y = toy_images(32)
    model = toy_model()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    p = model.predict(x)
    assert isinstance(p, np.ndarray) and p.shape == (32, 4) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-5)
    loss, acc = model.evaluate(x, y, verbose=0)
    assert loss == pytest.approx(float(-np.log(p[np.arange(32), y]).mean()), rel=1e-4)
    assert acc == pytest.approx(float((p.argmax(1) == y).mean()))
    # The same weights under the one-hot loss give the same numbers.
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["acc"], device="cpu")
    assert model.evaluate(x, to_categorical(y, 4), verbose=0) == pytest.approx(
        [loss, acc], rel=1e-5
    )


def test_softmax_cross_entropy_is_computed_from_logits():
    """A confident mistake: -log(softmax) from logits is 200, Keras's clipped formula saturates at
    16.1."""
    logits = torch.tensor([[100.0, -100.0]], requires_grad=True)
    target = torch.tensor([[0.0, 1.0]])
    loss = losses.get("categorical_crossentropy").torch_fn(softmax_stripped=True)(logits, target)
    assert loss.item() == pytest.approx(200.0)
    loss.backward()
    assert logits.grad.abs().sum() > 1  # still learning, where clip(p) would give a zero gradient
    probs = logits.detach().softmax(1)
    clipped = losses.get("categorical_crossentropy").torch_fn(softmax_stripped=False)(probs, target)
    assert clipped.item() == pytest.approx(-np.log(1e-7), rel=1e-3)


def test_the_final_softmax_moves_into_the_loss_only_where_it_should():
    model = toy_model("categorical_crossentropy")
    assert isinstance(model.net[-1], torch.nn.Softmax)
    assert not isinstance(model.learner().model[-1], torch.nn.Softmax)  # trained on logits
    model = toy_model(losses.CategoricalCrossentropy(from_logits=True))
    assert isinstance(model.learner().model[-1], torch.nn.Softmax)  # the user asked for it as is
    model = toy_model("mse")
    assert isinstance(model.learner().model[-1], torch.nn.Softmax)


def test_optimizers_by_name_and_object_use_keras_defaults():
    opt = optimizers.get("adadelta").build([torch.nn.Parameter(torch.zeros(1))])
    assert isinstance(opt, mlrepro.optim.Adadelta)  # torch's update, blocked (tests/test_optim.py)
    assert opt.defaults["lr"] == 1.0 and opt.defaults["rho"] == 0.95 and opt.defaults["eps"] == 1e-7
    assert optimizers.Adadelta(lr=0.5).learning_rate == 0.5  # Keras 2's spelling
    assert optimizers.get("sgd").learning_rate == 0.01
    with pytest.raises(TypeError, match="unknown argument 'betas'"):
        optimizers.Adam(betas=(0.9, 0.99))


def test_keras_and_engine_callbacks_both_work():
    x, y = toy_images(48)
    seen, engine_epochs = [], []

    class Engine(EngineCallback):
        def on_epoch_end(self, learner, logs):
            engine_epochs.append(logs["epoch"])

    # never "improves" twice
    stop = callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    model = toy_model()
    model.fit(
        x,
        y,
        epochs=5,
        batch_size=8,
        verbose=0,
        callbacks=[
            callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append((e, set(logs)))),
            Engine(),
            stop,
        ],
    )
    assert seen == [(0, {"loss", "accuracy"}), (1, {"loss", "accuracy"})]
    assert engine_epochs == [1, 2] and stop.stopped_epoch == 1
    with pytest.raises(TypeError, match="callbacks must be"):
        model.fit(x, y, verbose=0, callbacks=[print])


def test_to_categorical():
    np.testing.assert_array_equal(
        to_categorical([0, 2, 1], 3), np.eye(3, dtype=np.float32)[[0, 2, 1]]
    )
    assert to_categorical(np.array([[1], [0]])).shape == (2, 2)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        to_categorical([3], 3)


def test_save_and_load_weights_round_trip(tmp_path):
    x, _ = toy_images(4)
    a, b = toy_model(), toy_model(optimizer="sgd")
    a.fit(x, np.arange(4), epochs=1, verbose=0)
    a.save_weights(tmp_path / "w.pt")
    b.load_weights(tmp_path / "w.pt")
    np.testing.assert_array_equal(a.predict(x), b.predict(x))


def test_the_posts_program_runs_with_only_its_imports_changed(monkeypatch, capsys, data_dir):
    """examples/keras_mnist.py on 100 training images (the real run: docs/results.md)."""
    from mlrepro.keras.datasets import mnist

    load = mnist.load_data
    monkeypatch.setattr(
        mnist,
        "load_data",
        lambda path=None: tuple(
            (x[:n], y[:n])
            for (x, y), n in zip(load(str(data_dir) if data_dir else None), (100, 100))
        ),
    )
    runpy.run_path(str(REPO / "examples" / "keras_mnist.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert out.count("Epoch ") == 10 and "Epoch 10/10" in out
    acc = float(out.strip().splitlines()[-1].removeprefix("Accuracy of ").removesuffix("%"))
    assert acc > 30  # 10 epochs on 100 images: well above chance (10 %)
