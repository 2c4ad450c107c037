"""CPPN encoding: genomes are compositional pattern-producing networks (NEAT-style topologies).

A CPPN maps pixel coordinates to intensities, so its images are regular (stripes, blobs, repeated
motifs) and can be rendered at any resolution. Following the original code of Nguyen et al.
(2015): inputs x, y, d (distance from the centre) and a bias of 1.0; node activations chosen
uniformly from sine, bipolar sigmoid, Gaussian and clipped linear; a node is the weighted sum of
its inputs passed through its activation; weights in [-10, 10] stored as genes in [0, 1]; the
start topology connects every input to every output, with no hidden node.

Representation (fixed capacity, so a whole population renders in one compiled call). With N the
node capacity, a genome batch of n genomes is a dict of arrays:

* ``activation`` (n, N) int32 in 0..3: sine, bipolar sigmoid, Gaussian, clipped linear.
* ``alive`` (n, N) bool: which node slots are in use (inputs and outputs always are).
* ``position`` (n, N) float32: the node order. Inputs are 0, outputs 1, live hidden nodes lie
  strictly between; every connection goes from a lower to a higher position, so sorting by
  position is a topological order.
* ``connected`` (n, N, N) bool and ``weight`` (n, N, N) float32 genes in [0, 1]:
  ``connected[i, j]`` is the connection from node j into node i.

Slots 0..3 are the inputs (x, y, d, bias), the next ``channels`` slots are the outputs (one for
grayscale, three for colour), the rest are hidden slots. A dense adjacency is used rather than an
edge list because the batched renderer multiplies by it directly and the edge count of an edge
list would need its own capacity.

Mutation of each child, in this order (all batched in TensorFlow, no per-genome Python): every
weight with p = 0.1 by polynomial mutation (eta = 15) on its gene; every node's activation
resampled with p = 0.1; add a feed-forward connection with p = 0.5; delete a random connection
with p = 0.3; add a node with p = 0.5 by splitting a random connection a -> b into a -> new
(weight 1) and new -> b (the old weight); delete a random hidden node and its connections with
p = 0.2. A mutation that would exceed the capacity (no free slot) is skipped.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from keras_fool.encodings.base import Encoding
from keras_fool.encodings.direct import polynomial_delta

__all__ = ["ACTIVATIONS", "CPPNEncoding", "check_genomes"]

ACTIVATIONS = ("sine", "bipolar_sigmoid", "gaussian", "clipped_linear")
NUM_INPUTS = 4  # x, y, d, bias
WEIGHT_RANGE = 10.0
GENOME_KEYS = ("activation", "alive", "position", "connected", "weight")


# The node activations, indexed as in ACTIVATIONS; the renderer groups genomes by activation and
# applies each function only to its own group.
_ACTIVATION_FUNCTIONS = (
    tf.sin,
    lambda p: tf.tanh(0.5 * p),  # = 2 sigmoid(p) - 1
    lambda p: tf.exp(-tf.square(p)),
    lambda p: tf.clip_by_value(p, -3.0, 3.0) / 3.0,
)


def _choose(mask, u):
    """Per row, a uniformly chosen True index of ``mask`` (n, K), from one uniform ``u`` (n,) per row.

    The m-th True entry of the row is taken, m = floor(u * count), by indexing the list of True
    entries (``tf.where``, grouped by row) -- much cheaper than a scan over every entry.
    Returns (index (n,) int32, exists (n,) bool).
    """
    coords = tf.cast(tf.where(mask), tf.int32)  # (T, 2), rows in order
    counts = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    m = tf.minimum(tf.cast(u * tf.cast(counts, tf.float32), tf.int32), tf.maximum(counts - 1, 0))
    pick = tf.cumsum(counts, exclusive=True) + m
    coords = tf.concat([coords, tf.zeros((1, 2), tf.int32)], axis=0)  # a valid row when nothing is True
    index = tf.gather(coords[:, 1], tf.minimum(pick, tf.shape(coords)[0] - 1))
    return index, counts > 0


def _hls_to_rgb(h, l, s):
    """HLS in [0, 1] to RGB in [0, 1] (the colour space the original code read)."""
    def channel(n):
        k = tf.math.floormod(n + h * 12.0, 12.0)
        a = s * tf.minimum(l, 1.0 - l)
        return l - a * tf.clip_by_value(tf.minimum(k - 3.0, 9.0 - k), -1.0, 1.0)

    return tf.stack([channel(0.0), channel(8.0), channel(4.0)], axis=-1)


class CPPNEncoding(Encoding):
    """Genomes are CPPNs rendered for a whole population in one batched call.

    Args:
        image_shape: (H, W, C) with C = 1 (grayscale: |output|) or 3 (colour: three outputs).
        capacity: node slots per genome, inputs and outputs included.
        coordinates: ``"normalized"`` (x, y in [-1, 1], the default) or ``"pixel"`` (x, y as raw
            pixel indices, as the original fed them); d is always the normalised distance from
            the centre.
        color_space: ``"hsv"`` (default) or ``"hls"`` (the original's OpenCV reading) for
            colour images; a grayscale target accepts only the default.
        weight_rate, activation_rate, add_connection_rate, delete_connection_rate,
        add_node_rate, delete_node_rate: the mutation probabilities (defaults as the original).
        eta: polynomial mutation distribution index for weights.
    """

    name = "cppn"

    def __init__(self, image_shape=(28, 28, 1), capacity=16, coordinates="normalized", color_space="hsv",
                 weight_rate=0.1, activation_rate=0.1, add_connection_rate=0.5, delete_connection_rate=0.3,
                 add_node_rate=0.5, delete_node_rate=0.2, eta=15.0):
        super().__init__(image_shape)
        self.channels = self.image_shape[-1]
        minimum = NUM_INPUTS + self.channels
        if not isinstance(capacity, (int, np.integer)) or capacity < minimum:
            raise ValueError(
                f"capacity must hold the {NUM_INPUTS} inputs and {self.channels} output(s), so at least "
                f"{minimum}. Received: capacity={capacity}"
            )
        if coordinates not in ("normalized", "pixel"):
            raise ValueError(f"coordinates must be 'normalized' or 'pixel'. Received: coordinates={coordinates!r}")
        if color_space not in ("hsv", "hls"):
            raise ValueError(f"color_space must be 'hsv' or 'hls'. Received: color_space={color_space!r}")
        if self.channels == 1 and color_space != "hsv":
            raise ValueError(
                f"color_space={color_space!r} needs a colour target (3 channels); this image shape is grayscale "
                f"{self.image_shape}."
            )
        rates = dict(weight_rate=weight_rate, activation_rate=activation_rate, add_connection_rate=add_connection_rate,
                     delete_connection_rate=delete_connection_rate, add_node_rate=add_node_rate,
                     delete_node_rate=delete_node_rate)
        for key, value in rates.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{key} must be in [0, 1]. Received: {key}={value}")
        if not eta > 0:
            raise ValueError(f"eta must be positive. Received: eta={eta}")
        self.capacity = int(capacity)
        self.coordinates = coordinates
        self.color_space = color_space
        self.rates = {k: float(v) for k, v in rates.items()}
        self.eta = float(eta)
        self.outputs = list(range(NUM_INPUTS, NUM_INPUTS + self.channels))

    def get_config(self):
        return {
            "name": self.name,
            "image_shape": list(self.image_shape),
            "capacity": self.capacity,
            "coordinates": self.coordinates,
            "color_space": self.color_space,
            "eta": self.eta,
            **self.rates,
        }

    # ---- slots ------------------------------------------------------------------------------
    def _slot_kinds(self):
        """(N,) masks: is_input, is_output, is_hidden."""
        index = np.arange(self.capacity)
        is_input = index < NUM_INPUTS
        is_output = (index >= NUM_INPUTS) & (index < NUM_INPUTS + self.channels)
        return (tf.constant(is_input), tf.constant(is_output), tf.constant(~is_input & ~is_output))

    def validate(self, genomes):
        check_genomes(self, genomes)

    # ---- creation -----------------------------------------------------------------------------
    def random(self, n, seed):
        N = self.capacity
        is_input, is_output, _ = self._slot_kinds()
        seeds = tf.random.experimental.stateless_split(seed, 2)
        activation = tf.random.stateless_uniform((n, N), seeds[0], 0, len(ACTIVATIONS), dtype=tf.int32)
        alive = tf.broadcast_to(tf.logical_or(is_input, is_output), (n, N))
        position = tf.broadcast_to(tf.where(is_output, 1.0, 0.0), (n, N))
        connected = tf.broadcast_to(tf.logical_and(is_output[:, None], is_input[None, :]), (n, N, N))
        weight = tf.where(connected, tf.random.stateless_uniform((n, N, N), seeds[1]), 0.0)
        return {"activation": activation, "alive": alive, "position": position, "connected": connected, "weight": weight}

    # ---- mutation -----------------------------------------------------------------------------
    def _renumber(self, alive, position):
        """Spread live hidden positions evenly in (0, 1), keeping their order (precision stays)."""
        _, _, is_hidden = self._slot_kinds()
        live_hidden = tf.logical_and(alive, is_hidden)
        key = tf.where(live_hidden, position, 2.0)
        rank = tf.cast(tf.argsort(tf.argsort(key, axis=1, stable=True), axis=1, stable=True), tf.float32)
        count = tf.reduce_sum(tf.cast(live_hidden, tf.float32), axis=1, keepdims=True)
        return tf.where(live_hidden, (rank + 1.0) / (count + 1.0), position)

    def mutate(self, genomes, seed, generation=0):
        g = dict(genomes)
        n = tf.shape(g["activation"])[0]
        N = self.capacity
        is_input, is_output, is_hidden = self._slot_kinds()
        s = tf.random.experimental.stateless_split(seed, 16)
        u = lambda shape, i: tf.random.stateless_uniform(shape, s[i])  # noqa: E731
        r = self.rates

        # 1. weights of existing connections: work on the list of edges, not the N x N matrix.
        edges = tf.where(g["connected"])  # (E, 3) indices of every connection in the batch
        ue = tf.random.stateless_uniform(tf.shape(edges)[:1], s[0])
        hit = ue < r["weight_rate"]  # u < rate picks the edge, u / rate (uniform again) steps it
        delta = polynomial_delta(tf.minimum(ue / max(r["weight_rate"], 1e-12), 1.0 - 1e-7), self.eta)
        old = tf.gather_nd(g["weight"], edges)
        new = tf.where(hit, tf.clip_by_value(old + delta, 0.0, 1.0), old)
        g["weight"] = tf.tensor_scatter_nd_update(g["weight"], edges, new)

        # 2. activations of live non-input nodes.
        resample = tf.logical_and(tf.logical_and(g["alive"], ~is_input), u((n, N), 2) < r["activation_rate"])
        fresh = tf.random.stateless_uniform((n, N), s[3], 0, len(ACTIVATIONS), dtype=tf.int32)
        g["activation"] = tf.where(resample, fresh, g["activation"])

        # 3. add a feed-forward connection j -> i.
        pos_i, pos_j = g["position"][:, :, None], g["position"][:, None, :]
        can_receive = tf.logical_and(g["alive"], ~is_input)[:, :, None]
        can_send = tf.logical_and(g["alive"], ~is_output)[:, None, :]
        candidates = can_receive & can_send & (pos_j < pos_i) & ~g["connected"]
        flat, exists = _choose(tf.reshape(candidates, (n, N * N)), u((n,), 4))
        do = exists & (u((n,), 5) < r["add_connection_rate"])
        new_edge = tf.reshape(tf.one_hot(flat, N * N, on_value=True, off_value=False), (n, N, N)) & do[:, None, None]
        g["connected"] = g["connected"] | new_edge
        g["weight"] = tf.where(new_edge, u((n,), 6)[:, None, None], g["weight"])

        # 4. delete a random connection.
        flat, exists = _choose(tf.reshape(g["connected"], (n, N * N)), u((n,), 7))
        do = exists & (u((n,), 8) < r["delete_connection_rate"])
        gone = tf.reshape(tf.one_hot(flat, N * N, on_value=True, off_value=False), (n, N, N)) & do[:, None, None]
        g["connected"] = g["connected"] & ~gone
        g["weight"] = tf.where(gone, 0.0, g["weight"])

        # 5. add a node by splitting a random connection a -> b into a -> new -> b.
        flat, has_edge = _choose(tf.reshape(g["connected"], (n, N * N)), u((n,), 9))
        free = tf.logical_and(~g["alive"], is_hidden)
        slot, has_slot = _choose(free, u((n,), 10))
        do = has_edge & has_slot & (u((n,), 11) < r["add_node_rate"])
        b, a = flat // N, flat % N
        old_gene = tf.gather_nd(g["weight"], tf.stack([tf.range(n), b, a], axis=1))
        one = lambda idx: tf.one_hot(idx, N, on_value=True, off_value=False)  # noqa: E731
        edge = lambda to, frm: one(to)[:, :, None] & one(frm)[:, None, :] & do[:, None, None]  # noqa: E731
        split, into_new, out_of_new = edge(b, a), edge(slot, a), edge(b, slot)
        unit_gene = (1.0 + WEIGHT_RANGE) / (2.0 * WEIGHT_RANGE)  # the gene of weight +1
        g["connected"] = (g["connected"] & ~split) | into_new | out_of_new
        g["weight"] = tf.where(split, 0.0, g["weight"])
        g["weight"] = tf.where(into_new, unit_gene, g["weight"])
        g["weight"] = tf.where(out_of_new, old_gene[:, None, None], g["weight"])
        new_node = one(slot) & do[:, None]
        mid = 0.5 * (tf.gather(g["position"], a, batch_dims=1) + tf.gather(g["position"], b, batch_dims=1))
        g["alive"] = g["alive"] | new_node
        g["position"] = tf.where(new_node, mid[:, None], g["position"])
        fresh = tf.random.stateless_uniform((n, N), s[12], 0, len(ACTIVATIONS), dtype=tf.int32)
        g["activation"] = tf.where(new_node, fresh, g["activation"])

        # 6. delete a random hidden node with its connections.
        victim, exists = _choose(tf.logical_and(g["alive"], is_hidden), u((n,), 13))
        do = exists & (u((n,), 14) < r["delete_node_rate"])
        dead = one(victim) & do[:, None]
        g["alive"] = g["alive"] & ~dead
        touching = dead[:, :, None] | dead[:, None, :]
        g["connected"] = g["connected"] & ~touching
        g["weight"] = tf.where(touching, 0.0, g["weight"])
        g["position"] = tf.where(dead, 0.0, g["position"])

        g["position"] = self._renumber(g["alive"], g["position"])
        return g

    # ---- rendering ----------------------------------------------------------------------------
    def coordinate_inputs(self, height, width):
        """(4, height * width) float32: x, y, d and bias for every pixel, row-major."""
        ys, xs = np.meshgrid(np.arange(height, dtype=np.float32), np.arange(width, dtype=np.float32), indexing="ij")
        xn = 2.0 * xs / max(width - 1, 1) - 1.0
        yn = 2.0 * ys / max(height - 1, 1) - 1.0
        d = np.sqrt(xn ** 2 + yn ** 2) / np.sqrt(2.0)
        if self.coordinates == "pixel":
            # The original fed raw pixel indices; keep that scale at any resolution by mapping the
            # rendered grid onto the genome's own image size.
            xs_, ys_ = (xn + 1.0) / 2.0 * (self.image_shape[1] - 1), (yn + 1.0) / 2.0 * (self.image_shape[0] - 1)
            x, y = xs_, ys_
        else:
            x, y = xn, yn
        return np.stack([x, y, d, np.ones_like(d)]).reshape(4, -1).astype(np.float32)

    def decode(self, genomes):
        return self._render(genomes, tf.constant(self.coordinate_inputs(*self.image_shape[:2])), *self.image_shape[:2])

    def render(self, genomes, height, width, batch_size=None):
        """Images (n, height, width, C) in [0, 1] of the CPPNs, at any resolution.

        Large renderings go ``batch_size`` genomes at a time (by default so that the scratch
        buffer stays near 256 MB).
        """
        inputs = tf.constant(self.coordinate_inputs(height, width))
        n = int(tf.shape(genomes["activation"])[0])
        if batch_size is None:
            batch_size = max(1, int(2**26 // (height * width * self.capacity)))
        parts = []
        for start in range(0, n, batch_size):
            part = {k: v[start : start + batch_size] for k, v in genomes.items()}
            parts.append(self._render(part, inputs, height, width))
        return tf.concat(parts, axis=0)

    def _feeds_outputs(self, connected):
        """(n, N) bool: nodes from which a path of connections leads to an output."""
        _, is_output, _ = self._slot_kinds()
        edges = tf.cast(connected, tf.float32)  # edges[i, j]: j -> i
        reach = tf.cast(tf.broadcast_to(is_output, tf.shape(connected)[:2]), tf.float32)

        def grow(changed, reach):
            new = tf.minimum(reach + tf.linalg.matvec(edges, reach, transpose_a=True), 1.0)
            return tf.reduce_any(new > reach), new

        _, reach = tf.while_loop(lambda changed, r: changed, grow, (tf.constant(True), reach))
        return reach > 0.0

    def _scratch(self):
        # One resizable buffer per encoding, created on first use outside any trace; node values
        # are written into it in place (a loop-carried tensor would be copied on every update).
        if getattr(self, "_buffer", None) is None:
            with tf.init_scope():
                self._buffer = tf.Variable(tf.zeros([0, 0]), shape=tf.TensorShape(None), trainable=False,
                                           name="cppn_node_values")
        return self._buffer

    def _render(self, genomes, inputs, height, width):
        """Evaluate a population of CPPNs at every pixel, node after node, all genomes at once.

        Slots are sorted so that inputs come first, then the hidden nodes that feed an output in
        position order (a topological order), then the outputs. Step k computes node k of every
        genome that has one: the values of its incoming edges' sources are gathered from a
        node-major scratch buffer of shape (nodes * n, pixels), summed per genome, passed through
        the node's activation (genomes grouped by activation) and written back in place.
        """
        N = self.capacity
        C = self.channels
        n = tf.shape(genomes["activation"])[0]
        is_input, is_output, is_hidden = self._slot_kinds()
        # Only hidden nodes with a path to an output matter; the others are skipped (sorted
        # among the dead), which shortens the node-by-node loop.
        live_hidden = tf.logical_and(genomes["alive"], is_hidden) & self._feeds_outputs(genomes["connected"])
        key = tf.where(is_input, -1.0, tf.where(is_output, 3.0, tf.where(live_hidden, genomes["position"], 2.0)))
        order = tf.argsort(key, axis=1, stable=True)
        sort = lambda t: tf.gather(tf.gather(t, order, axis=1, batch_dims=1), order, axis=2, batch_dims=1)  # noqa: E731
        connected = sort(genomes["connected"])
        weights = tf.where(connected, sort(genomes["weight"]) * (2.0 * WEIGHT_RANGE) - WEIGHT_RANGE, 0.0)
        activation = tf.gather(genomes["activation"], order, axis=1, batch_dims=1)
        hidden_max = tf.reduce_max(tf.reduce_sum(tf.cast(live_hidden, tf.int32), axis=1))
        live = NUM_INPUTS + hidden_max  # slots that can send: inputs and live hidden nodes
        used = tf.gather(live_hidden | is_input | is_output, order, axis=1, batch_dims=1)  # in sorted order
        used_edges = connected & used[:, :, None] & used[:, None, :]
        edge_list = tf.cast(tf.where(used_edges), tf.int32)  # (E, 3): genome, target node, source node
        by_target = tf.argsort(edge_list[:, 1], stable=True)  # edges into node k are one slice
        edge_list = tf.gather(edge_list, by_target)
        edge_weights = tf.gather_nd(weights, edge_list)  # (E,)
        edge_rows = edge_list[:, 2] * n + edge_list[:, 0]  # the source's row in the buffer
        first_edge = tf.cumsum(tf.math.bincount(edge_list[:, 1], minlength=N, maxlength=N), exclusive=True)
        edge_count = tf.math.bincount(edge_list[:, 1], minlength=N, maxlength=N)
        pixels = tf.shape(inputs)[1]
        buffer = self._scratch()
        buffer.assign(tf.concat([
            tf.reshape(tf.broadcast_to(inputs[:, None, :], (NUM_INPUTS, n, pixels)), (NUM_INPUTS * n, pixels)),
            tf.zeros((hidden_max * n, pixels)),
        ], axis=0))

        def pre_activation(k):
            """Weighted input sums (n, P) of node k in every genome, from its incoming edges only."""
            edges = tf.range(first_edge[k], first_edge[k] + edge_count[k])
            sources = tf.gather(buffer, tf.gather(edge_rows, edges)) * tf.gather(edge_weights, edges)[:, None]
            return tf.math.unsorted_segment_sum(sources, tf.gather(edge_list[:, 0], edges), n)

        def grouped_activation(pre, ids, which):
            """Each row of ``pre`` (for genomes ``ids``) through its own activation ``which``.

            Genomes are grouped by activation, so that each value goes through one function
            rather than all four. Returns the groups' ids and values, to scatter or stitch.
            """
            groups = tf.dynamic_partition(ids, which, len(_ACTIVATION_FUNCTIONS))
            return groups, [function(tf.gather(pre, g)) for g, function in zip(groups, _ACTIVATION_FUNCTIONS)]

        counts = tf.reduce_sum(tf.cast(live_hidden, tf.int32), axis=1)  # hidden nodes to evaluate
        everyone = tf.range(n)

        def body(k):
            ids = tf.boolean_mask(everyone, counts > k - NUM_INPUTS)  # genomes with a k-th hidden node
            groups, values = grouped_activation(pre_activation(k), ids, tf.gather(activation[:, k], ids))
            for g, v in zip(groups, values):
                buffer.scatter_update(tf.IndexedSlices(v, k * n + g))
            return (k + 1,)

        tf.while_loop(lambda k: k < live, body, (tf.constant(NUM_INPUTS),))
        out = []
        for k in range(N - C, N):  # outputs sort last
            groups, values = grouped_activation(pre_activation(k), everyone, activation[:, k])
            out.append(tf.dynamic_stitch(groups, values))
        out = tf.stack(out, axis=1)
        out = tf.clip_by_value(tf.abs(out), 0.0, 1.0)  # (n, C, pixels)
        if C == 1:
            return tf.reshape(out, (n, height, width, 1))
        out = tf.reshape(tf.transpose(out, (0, 2, 1)), (n, height, width, 3))
        if self.color_space == "hsv":
            return tf.clip_by_value(tf.image.hsv_to_rgb(out), 0.0, 1.0)
        return tf.clip_by_value(_hls_to_rgb(out[..., 0], out[..., 1], out[..., 2]), 0.0, 1.0)


def check_genomes(encoding, genomes):
    """Check a CPPN genome batch against every invariant; raises ValueError naming the first broken one.

    Invariants: the expected keys, dtypes and shapes; inputs and outputs alive; connections only
    between live nodes, never into an input or out of an output, always from a lower to a higher
    position (so the graph is acyclic and sorting by position is a topological order); weight
    genes in [0, 1]; activations in 0..3.
    """
    g = {k: np.asarray(genomes[k]) for k in GENOME_KEYS if k in genomes}
    missing = [k for k in GENOME_KEYS if k not in g]
    if missing:
        raise ValueError(f"CPPN genomes lack {missing}.")
    N = encoding.capacity
    n = g["activation"].shape[0]
    shapes = {"activation": (n, N), "alive": (n, N), "position": (n, N), "connected": (n, N, N), "weight": (n, N, N)}
    dtypes = {"activation": np.int32, "alive": np.bool_, "position": np.float32, "connected": np.bool_, "weight": np.float32}
    for key in GENOME_KEYS:
        if g[key].shape != shapes[key] or g[key].dtype != dtypes[key]:
            raise ValueError(
                f"CPPN genome array {key!r} must be {np.dtype(dtypes[key]).name} of shape {shapes[key]} for capacity {N}; "
                f"received {g[key].dtype} of shape {g[key].shape}."
            )
    fixed = NUM_INPUTS + encoding.channels
    if not g["alive"][:, :fixed].all():
        raise ValueError("CPPN genomes must keep their input and output nodes alive.")
    c = g["connected"]
    if (c & ~(g["alive"][:, :, None] & g["alive"][:, None, :])).any():
        raise ValueError("CPPN genomes connect dead nodes.")
    if c[:, :NUM_INPUTS, :].any() or c[:, :, NUM_INPUTS:fixed].any():
        raise ValueError("CPPN genomes connect into an input or out of an output.")
    if (c & ~(g["position"][:, None, :] < g["position"][:, :, None])).any():
        raise ValueError("CPPN genomes have a connection that does not go forward in the node order (a cycle is possible).")
    if not np.isfinite(g["weight"]).all() or g["weight"].min() < 0 or g["weight"].max() > 1:
        raise ValueError("CPPN weight genes must be finite and in [0, 1].")
    if g["activation"].min() < 0 or g["activation"].max() >= len(ACTIVATIONS):
        raise ValueError(f"CPPN activations must be in 0..{len(ACTIVATIONS) - 1}.")
    return True
