"""Committees: several classifiers that average their class probabilities."""

from __future__ import annotations

import keras

__all__ = ["Committee"]


@keras.saving.register_keras_serializable(package="keras_fool")
class Committee(keras.Model):
    """A Keras model whose output is the mean of its members' class probabilities.

    It is a functional model: one input, every member applied to it, and a
    ``keras.layers.Average`` of their outputs. It trains, predicts, saves and loads (``.keras``,
    safe mode, with ``keras_fool`` imported) as one model. Members that share a name (snapshots
    cloned from one model) are each wrapped in a functional model named ``<name>_<index>``, since
    Keras requires unique layer names.

    Args:
        members: a list of one or more Keras models, all with the same input shape and the same
            number of outputs, each returning class probabilities.
        name: the committee's name.
        **kwargs: passed to ``keras.Model`` (e.g. ``trainable``).

    Raises:
        TypeError: ``members`` is not a list of Keras models.
        ValueError: no member, or members that differ in input shape or number of outputs.
    """

    def __init__(self, members, name="committee", **kwargs):
        members = _check_members(members)
        inputs = keras.Input(shape=tuple(members[0].input_shape[1:]), name="image")
        outputs = [layer(inputs) for layer in _uniquely_named(members)]
        average = keras.layers.Average(name="mean_probabilities")(outputs) if len(outputs) > 1 else outputs[0]
        super().__init__(inputs, average, name=name, **kwargs)
        self.members = members

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "members": [keras.saving.serialize_keras_object(member) for member in self.members],
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        members = [
            keras.saving.deserialize_keras_object(member, custom_objects=custom_objects)
            for member in config.pop("members")
        ]
        return cls(members, **config)


def _check_members(members):
    if isinstance(members, keras.Model) or not isinstance(members, (list, tuple)):
        raise TypeError(f"members must be a list of keras.Model. Received: members={type(members).__name__}")
    members = list(members)
    if not members:
        raise ValueError("A committee needs at least one member. Received: members=[]")
    for i, member in enumerate(members):
        if not isinstance(member, keras.Model):
            raise TypeError(f"Every member must be a keras.Model. Received: members[{i}]={type(member).__name__}")
    input_shapes = [tuple(m.input_shape[1:]) for m in members]
    output_sizes = [m.output_shape[-1] for m in members]
    if len(set(input_shapes)) > 1 or len(set(output_sizes)) > 1:
        described = ", ".join(
            f"{m.name}: input {shape}, {size} outputs" for m, shape, size in zip(members, input_shapes, output_sizes)
        )
        raise ValueError(
            f"Committee members must share one input shape and one number of outputs. Received: {described}"
        )
    return members


def _uniquely_named(members):
    """The members, each one whose name is taken wrapped in a functional model of a fresh name."""
    counts = {}
    for member in members:
        counts[member.name] = counts.get(member.name, 0) + 1
    layers = []
    for i, member in enumerate(members):
        if counts[member.name] == 1:
            layers.append(member)
        else:
            inputs = keras.Input(shape=tuple(member.input_shape[1:]))
            layers.append(keras.Model(inputs, member(inputs), name=f"{member.name}_{i}"))
    return layers
