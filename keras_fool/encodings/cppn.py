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
grayscale, three for colour), the rest are hidden slots. A dense adjacency is stored rather than
an edge list because then every genome has the same shape whatever its edge count (an edge list
would need a capacity of its own); the renderer extracts the population's edges at each call.

Mutation of each child, in this order (all batched in TensorFlow, no per-genome Python): every
weight with p = 0.1 by polynomial mutation (eta = 15) on its gene; every node's activation
resampled with p = 0.1; add a feed-forward connection with p = 0.5; delete a random connection
with p = 0.3; add a node with p = 0.5 by splitting a random connection a -> b into a -> new
and new -> b; delete a random hidden node and its connections with p = 0.2. A mutation that
would exceed the capacity (no free slot) is skipped.

Two of these steps have two rules each (``CPPN_RULES`` names the two sets a run chooses from):

* ``add_connection="ordered"`` (the default) adds j -> i only where j comes before i in the
  stored node order; ``"acyclic"`` (the original code's, a DnnFF in sferes) adds any pair that
  keeps the graph acyclic (no path i -> ... -> j), so a hidden node can gain a source that now
  lies after it; the hidden nodes are then ordered again, by their longest path from a node
  without sources (ties kept in the old order), so every connection goes forward again.
* ``add_node="unit-in"`` (the default) gives a -> new the weight +1 and new -> b the old weight;
  ``"old-weight"`` (the original's) gives both new connections the old weight.

Rendering (``_render``): every node that matters (an output, or a live hidden node with a path to
an output) of every genome is one row of a (rows, pixels) buffer; step s evaluates each genome's
s-th hidden node in position order, the last step the outputs, so a population renders in
1 + (most hidden nodes in a genome) steps of a handful of ops each, whatever its size.
"""

from __future__ import annotations

import collections
import contextlib
import math

import numpy as np
import tensorflow as tf
# The plain resource variable, made directly: tf.Variable would go through a strategy's variable
# creator and come back mirrored (see CPPNEncoding._scratch).
from tensorflow.python.ops import resource_variable_ops

from keras_fool.encodings.base import Encoding
from keras_fool.encodings.direct import polynomial_delta
from keras_fool.validation import check_number

__all__ = ["ACTIVATIONS", "CPPN_RULES", "CPPNEncoding", "check_genomes", "rules_name"]

ACTIVATIONS = ("sine", "bipolar_sigmoid", "gaussian", "clipped_linear")
NUM_INPUTS = 4  # x, y, d, bias
WEIGHT_RANGE = 10.0
GENOME_KEYS = ("activation", "alive", "position", "connected", "weight")
ADD_CONNECTION = ("ordered", "acyclic")
ADD_NODE = ("unit-in", "old-weight")
# The structural rules a run names (run_evolution's cppn_rules, --cppn-rules): ours, and those of the
# original code of Nguyen et al. (2015).
CPPN_RULES = {"ours": {"add_connection": "ordered", "add_node": "unit-in"},
              "original": {"add_connection": "acyclic", "add_node": "old-weight"}}


# The node activations, indexed as in ACTIVATIONS: sin(p), 2 sigmoid(p) - 1 = tanh(p / 2),
# exp(-p^2) and clip(p, -3, 3) / 3. The renderer folds each one's input scale (1, 1/2, 1, 1/3)
# into the node's incoming weights and applies the rest, one op per function, each to the rows
# of its own activation only.
_INPUT_SCALE = (1.0, 0.5, 1.0, 1.0 / 3.0)
_RENDER_FUNCTIONS = (
    tf.sin,
    tf.tanh,
    lambda p: tf.exp(-tf.square(p)),
    lambda p: tf.clip_by_value(p, -1.0, 1.0),
)


# The buffer rows of one render (see CPPNEncoding._render_rows).
_RenderRows = collections.namedtuple(
    "_RenderRows", "steps evaluate scale nodes key rows row_of counts step_rows step_first")


def rules_name(config):
    """The name in ``CPPN_RULES`` of a CPPN encoding config's structural rules (a missing key: the default),
    or None for another mix."""
    chosen = {"add_connection": config.get("add_connection", ADD_CONNECTION[0]),
              "add_node": config.get("add_node", ADD_NODE[0])}
    return next((name for name, rules in CPPN_RULES.items() if rules == chosen), None)


def _check_choice(name, value, allowed):
    """Refuse a ``value`` of the option ``name`` that is not one of ``allowed``, naming both."""
    if value not in allowed:
        listed = ", ".join(map(repr, allowed[:-1])) + f" or {allowed[-1]!r}"
        raise ValueError(f"{name} must be {listed}. Received: {name}={value!r}")


def _to_weight(gene, target_scale):
    """Weights in [-10, 10] of genes in [0, 1], the target node's activation's input scale folded in."""
    return (gene * (2.0 * WEIGHT_RANGE) - WEIGHT_RANGE) * target_scale


def _split_by_step(t, lengths, steps):
    """A TensorArray of ``steps + 1`` elements: ``t`` split along its first axis into ``lengths``."""
    shape = tf.TensorShape([None]).concatenate(t.shape[1:])
    return tf.TensorArray(t.dtype, size=steps + 1, infer_shape=False, element_shape=shape).split(
        t, tf.cast(lengths, tf.int64))


def _fit_buffer(buffer, rows, pixels):
    """Reallocate the scratch ``buffer`` as zeros (rows + 1, pixels) if it has too few rows or another width.

    Row 0 is zero from then on (no step writes it). The buffer's shape is read without reading
    (nor copying) the buffer.
    """
    shape = tf.raw_ops.VariableShape(input=buffer.handle)
    stale = tf.logical_or(shape[0] < rows + 1, tf.not_equal(shape[1], pixels))

    def allocate():
        buffer.assign(tf.zeros(tf.stack([rows + 1, pixels])))
        return tf.constant(0)

    tf.cond(stale, allocate, lambda: tf.constant(0))


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


def _uniform(seeds, i, shape):
    """Uniform [0, 1) draws of ``shape`` from the i-th of a mutation's split stateless seeds."""
    return tf.random.stateless_uniform(shape, seeds[i])


def _entry(rows, flat, N):
    """(n, 3) scatter coordinates (genome, target, source) of one flat index into N x N per genome."""
    return tf.stack([rows, flat // N, flat % N], axis=1)


def _put(tensor, coords, do, value):
    """tensor[coords] = value where do, else unchanged."""
    return tf.tensor_scatter_nd_update(tensor, coords, tf.where(do, value, tf.gather_nd(tensor, coords)))


def _one_hot(index, N):
    """(n, N) bool, True at ``index`` (n,) of each row."""
    return tf.one_hot(index, N, on_value=True, off_value=False)


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
        weight_rate: the probability that a connection's weight mutates (defaults as the original).
        activation_rate: the probability that a node's activation function changes.
        add_connection_rate: the probability of adding a connection.
        delete_connection_rate: the probability of deleting a connection.
        add_node_rate: the probability of adding a node.
        delete_node_rate: the probability of deleting a node.
        eta: polynomial mutation distribution index for weights.
        add_connection: ``"ordered"`` (default: only from an earlier to a later node of the stored
            order) or ``"acyclic"`` (the original's: any pair that keeps the graph acyclic; see the
            module docstring).
        add_node: ``"unit-in"`` (default: the split's first connection gets weight +1) or
            ``"old-weight"`` (the original's: both new connections get the split one's weight).
    """

    name = "cppn"

    def __init__(self, image_shape=(28, 28, 1), capacity=16, coordinates="normalized", color_space="hsv",
                 weight_rate=0.1, activation_rate=0.1, add_connection_rate=0.5, delete_connection_rate=0.3,
                 add_node_rate=0.5, delete_node_rate=0.2, eta=15.0, add_connection="ordered", add_node="unit-in"):
        super().__init__(image_shape)
        self.channels = self.image_shape[-1]
        minimum = NUM_INPUTS + self.channels
        if not isinstance(capacity, (int, np.integer)) or capacity < minimum:
            raise ValueError(
                f"capacity must hold the {NUM_INPUTS} inputs and {self.channels} output(s), so at least "
                f"{minimum}. Received: capacity={capacity}"
            )
        for name, value, allowed in (("coordinates", coordinates, ("normalized", "pixel")),
                                     ("color_space", color_space, ("hsv", "hls")),
                                     ("add_connection", add_connection, ADD_CONNECTION),
                                     ("add_node", add_node, ADD_NODE)):
            _check_choice(name, value, allowed)
        if self.channels == 1 and color_space != "hsv":
            raise ValueError(
                f"color_space={color_space!r} needs a colour target (3 channels); this image shape is grayscale "
                f"{self.image_shape}."
            )
        rates = dict(weight_rate=weight_rate, activation_rate=activation_rate, add_connection_rate=add_connection_rate,
                     delete_connection_rate=delete_connection_rate, add_node_rate=add_node_rate,
                     delete_node_rate=delete_node_rate)
        rates = {key: check_number(key, value, 0.0, maximum=1.0) for key, value in rates.items()}
        eta = check_number("eta", eta, 0.0, strict=True)  # an infinite eta has no mutation step
        self.capacity = int(capacity)
        self.coordinates = coordinates
        self.color_space = color_space
        self.rates = {k: float(v) for k, v in rates.items()}
        self.eta = float(eta)
        self.add_connection, self.add_node = add_connection, add_node
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
            "add_connection": self.add_connection,
            "add_node": self.add_node,
        }

    # ---- slots ------------------------------------------------------------------------------
    def with_capacity(self, capacity):
        """This encoding with ``capacity`` node slots (at least the current ones), every other setting the same."""
        if not isinstance(capacity, (int, np.integer)) or capacity < self.capacity:
            raise ValueError(f"A grown CPPN encoding needs at least {self.capacity} slots. Received: capacity={capacity}")
        config = {k: v for k, v in self.get_config().items() if k != "name"}
        return CPPNEncoding(**{**config, "capacity": int(capacity)})

    def padded(self, genomes):
        """``genomes`` of a smaller capacity in this encoding's slots: the same networks, the new slots dead.

        The new slots are hidden slots after the old ones, unconnected, so every network renders
        exactly as before.

        Raises:
            ValueError: the genomes have more slots than this encoding.
        """
        old = int(genomes["alive"].shape[1])
        if old > self.capacity:
            raise ValueError(f"CPPN genomes of {old} slots cannot go into fewer slots ({self.capacity}).")
        extra = self.capacity - old

        def pad(key, value):
            axes = 1 if key in ("activation", "alive", "position") else 2
            return tf.pad(value, [[0, 0]] + [[0, extra]] * axes + [[0, 0]] * (len(value.shape) - 1 - axes))

        return {k: pad(k, tf.convert_to_tensor(genomes[k])) for k in GENOME_KEYS}

    def full(self, genomes):
        """(n,) bool: which networks use every hidden slot (an add-node mutation would be skipped)."""
        return np.asarray(genomes["alive"]).all(axis=1)

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
        """Spread live hidden positions evenly in (0, 1), keeping their order (precision stays).

        The live hidden nodes' ``position`` may be any order key (see :meth:`_reorder`).
        """
        _, _, is_hidden = self._slot_kinds()
        live_hidden = tf.logical_and(alive, is_hidden)
        key = tf.where(live_hidden, position, np.inf)
        rank = tf.cast(tf.argsort(tf.argsort(key, axis=1, stable=True), axis=1, stable=True), tf.float32)
        count = tf.reduce_sum(tf.cast(live_hidden, tf.float32), axis=1, keepdims=True)
        return tf.where(live_hidden, (rank + 1.0) / (count + 1.0), position)

    def _reorder(self, alive, connected, position):
        """Positions in which every connection goes forward: hidden nodes by their longest path from a node
        without sources, ties in their old order, then spread evenly (:meth:`_renumber`).

        The depths are relaxed until they settle, at most N times (a path has fewer than N edges). A
        connection j -> i gives i a depth above j's, so sorting by depth is a topological order.
        """
        N = self.capacity
        _, _, is_hidden = self._slot_kinds()
        edges = tf.cast(connected, tf.float32)

        def relax(depth, _):
            return tf.reduce_max(edges * (depth[:, None, :] + 1.0), axis=2), depth

        zeros = tf.zeros_like(position)
        depth, _ = tf.while_loop(lambda d, before: tf.reduce_any(d != before), relax, (zeros, zeros - 1.0),
                                 maximum_iterations=N)
        old_rank = tf.argsort(tf.argsort(tf.where(alive & is_hidden, position, np.inf), axis=1, stable=True),
                              axis=1, stable=True)
        key = depth * N + tf.cast(old_rank, tf.float32)  # exact: at most N * N + N
        return self._renumber(alive, tf.where(alive & is_hidden, key, position))

    def mutate(self, genomes, seed, generation=0):
        """Mutated copies of ``genomes``: the six steps of the module docstring, in order, batched.

        Args:
            genomes: a batch of n genomes (the dict of arrays described in the module docstring).
            seed: int32 tensor of shape (2,); split into 16 stateless seeds, one per draw.
            generation: unused (the rates are fixed); part of the ``Encoding`` interface.

        Returns:
            The mutated batch, with the keys, dtypes and shapes of ``genomes``.
        """
        return self._mutate(dict(genomes), seed, weights=True)

    def iso_line(self, parents, mates, seed, generation, iso_sigma, line_sigma):
        """Iso+LineDD on the weight genes, then :meth:`mutate`'s steps 2-6 (activations and structure).

        Every connection of the parent gets the isotropic step; the line step moves a weight towards
        (or past) the mate's only where the mate has the same connection (slots of different lineages
        need not hold the same node, so elsewhere there is no line to follow). Genes are clipped to [0, 1].
        """
        seeds = tf.random.experimental.stateless_split(seed, 3)
        n = tf.shape(parents["weight"])[0]
        g = dict(parents)
        iso = iso_sigma * tf.random.stateless_normal(tf.shape(g["weight"]), seeds[0])
        line = line_sigma * tf.random.stateless_normal(tf.stack([n, 1, 1]), seeds[1])
        shared = tf.logical_and(g["connected"], mates["connected"])
        moved = g["weight"] + iso + line * tf.where(shared, mates["weight"] - g["weight"], 0.0)
        g["weight"] = tf.where(g["connected"], tf.clip_by_value(moved, 0.0, 1.0), g["weight"])
        return self._mutate(g, seeds[2], weights=False)

    def _mutate(self, g, seed, weights):
        n = tf.shape(g["activation"])[0]
        s = tf.random.experimental.stateless_split(seed, 16)
        if weights:
            g["weight"] = self._mutate_weights(g, s)
        g["activation"] = self._mutate_activations(g, s, n)
        # Connection changes touch one entry per genome: they are written as scatters of (genome,
        # target, source) entries (n of them, or 3n for a split), not as whole (n, N, N) selects.
        rows = tf.range(n)
        g["connected"], g["weight"], g["position"] = self._add_connection(g, s, n, rows)
        g["connected"], g["weight"] = self._delete_connection(g, s, n, rows)
        g.update(self._add_node(g, s, n, rows))
        g.update(self._delete_node(g, s, n))
        g["position"] = self._renumber(g["alive"], g["position"])
        return g

    def _mutate_weights(self, g, s):
        """Step 1: polynomial mutation of the weight genes of existing connections.

        Works on the list of edges, not the N x N matrix: an edge's draw u < rate picks it and
        u / rate (uniform again) steps it. Returns the new ``weight`` (n, N, N).
        """
        r = self.rates
        edges = tf.where(g["connected"])  # (E, 3) indices of every connection in the batch
        ue = tf.random.stateless_uniform(tf.shape(edges)[:1], s[0])
        hit = ue < r["weight_rate"]
        delta = polynomial_delta(tf.minimum(ue / max(r["weight_rate"], 1e-12), 1.0 - 1e-7), self.eta)
        old = tf.gather_nd(g["weight"], edges)
        new = tf.where(hit, tf.clip_by_value(old + delta, 0.0, 1.0), old)
        return tf.tensor_scatter_nd_update(g["weight"], edges, new)

    def _mutate_activations(self, g, s, n):
        """Step 2: resample the activations of live non-input nodes; returns ``activation`` (n, N)."""
        is_input, _, _ = self._slot_kinds()
        resample = tf.logical_and(tf.logical_and(g["alive"], ~is_input),
                                  _uniform(s, 2, (n, self.capacity)) < self.rates["activation_rate"])
        fresh = tf.random.stateless_uniform((n, self.capacity), s[3], 0, len(ACTIVATIONS), dtype=tf.int32)
        return tf.where(resample, fresh, g["activation"])

    def _add_connection(self, g, s, n, rows):
        """Step 3: add a connection j -> i that keeps the graph acyclic, by the ``add_connection`` rule.

        "ordered": j before i in the node order; "acyclic": no path from i to j (i != j), after which
        the genomes given a connection against their order are ordered again (:meth:`_reorder`).
        Returns (``connected``, ``weight``, ``position``).
        """
        N = self.capacity
        is_input, is_output, _ = self._slot_kinds()
        forward = g["position"][:, None, :] < g["position"][:, :, None]  # [i, j]: pos_j < pos_i
        if self.add_connection == "acyclic":
            allowed = tf.transpose(self._paths(g["connected"]), (0, 2, 1)) == 0.0  # [i, j]: no path i -> ... -> j
        else:
            allowed = forward
        can_receive = tf.logical_and(g["alive"], ~is_input)[:, :, None]
        can_send = tf.logical_and(g["alive"], ~is_output)[:, None, :]
        candidates = can_receive & can_send & allowed & ~g["connected"]
        flat, exists = _choose(tf.reshape(candidates, (n, N * N)), _uniform(s, 4, (n,)))
        do = exists & (_uniform(s, 5, (n,)) < self.rates["add_connection_rate"])
        at = _entry(rows, flat, N)
        connected = _put(g["connected"], at, do, tf.ones_like(do))
        position = g["position"]
        if self.add_connection == "acyclic":
            backward = do & ~tf.gather_nd(forward, at)
            position = tf.where(backward[:, None], self._reorder(g["alive"], connected, position), position)
        return connected, _put(g["weight"], at, do, _uniform(s, 6, (n,))), position

    def _delete_connection(self, g, s, n, rows):
        """Step 4: delete a random connection; returns (``connected``, ``weight``)."""
        N = self.capacity
        flat, exists = _choose(tf.reshape(g["connected"], (n, N * N)), _uniform(s, 7, (n,)))
        do = exists & (_uniform(s, 8, (n,)) < self.rates["delete_connection_rate"])
        at = _entry(rows, flat, N)
        return _put(g["connected"], at, do, tf.zeros_like(do)), _put(g["weight"], at, do, tf.zeros((n,)))

    def _add_node(self, g, s, n, rows):
        """Step 5: add a node by splitting a random connection a -> b into a -> new -> b.

        new -> b keeps the old weight; a -> new gets weight +1 ("unit-in") or the old weight too ("old-weight").

        Returns the five updated genome arrays as a dict.
        """
        N = self.capacity
        _, _, is_hidden = self._slot_kinds()
        flat, has_edge = _choose(tf.reshape(g["connected"], (n, N * N)), _uniform(s, 9, (n,)))
        free = tf.logical_and(~g["alive"], is_hidden)
        slot, has_slot = _choose(free, _uniform(s, 10, (n,)))
        do = has_edge & has_slot & (_uniform(s, 11, (n,)) < self.rates["add_node_rate"])
        b, a = flat // N, flat % N
        old_gene = tf.gather_nd(g["weight"], tf.stack([rows, b, a], axis=1))
        unit_gene = (1.0 + WEIGHT_RANGE) / (2.0 * WEIGHT_RANGE)  # the gene of weight +1
        in_gene = old_gene if self.add_node == "old-weight" else tf.fill((n,), unit_gene)
        # The three entries differ (the new slot is neither a nor b) wherever do holds.
        at = tf.concat([_entry(rows, flat, N), tf.stack([rows, slot, a], 1), tf.stack([rows, b, slot], 1)], axis=0)
        do3 = tf.tile(do, [3])
        connected = _put(g["connected"], at, do3, tf.concat([tf.zeros_like(do), tf.ones_like(do), tf.ones_like(do)], 0))
        weight = _put(g["weight"], at, do3, tf.concat([tf.zeros((n,)), in_gene, old_gene], 0))
        new_node = _one_hot(slot, N) & do[:, None]
        mid = 0.5 * (tf.gather(g["position"], a, batch_dims=1) + tf.gather(g["position"], b, batch_dims=1))
        fresh = tf.random.stateless_uniform((n, N), s[12], 0, len(ACTIVATIONS), dtype=tf.int32)
        return {"connected": connected, "weight": weight, "alive": g["alive"] | new_node,
                "position": tf.where(new_node, mid[:, None], g["position"]),
                "activation": tf.where(new_node, fresh, g["activation"])}

    def _delete_node(self, g, s, n):
        """Step 6: delete a random hidden node, then keep only connections between live nodes.

        Only those connections keep a weight gene. Returns the updated ``alive``, ``position``,
        ``connected`` and ``weight`` as a dict.
        """
        _, _, is_hidden = self._slot_kinds()
        victim, exists = _choose(tf.logical_and(g["alive"], is_hidden), _uniform(s, 13, (n,)))
        do = exists & (_uniform(s, 14, (n,)) < self.rates["delete_node_rate"])
        dead = _one_hot(victim, self.capacity) & do[:, None]
        alive = g["alive"] & ~dead
        connected = g["connected"] & alive[:, :, None] & alive[:, None, :]
        return {"alive": alive, "position": tf.where(dead, 0.0, g["position"]), "connected": connected,
                "weight": tf.where(connected, g["weight"], 0.0)}

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

    def _paths(self, connected):
        """(n, N, N) float32 in {0, 1}: [i, j] is 1 where a path j -> ... -> i exists (or i == j).

        Reachability by repeated squaring of I + adjacency: ceil(log2(N)) batched products cover
        every path (at most N - 1 edges), fewer ops than one mat-vec step per edge.
        """
        hop = tf.cast(connected, tf.float32) + tf.eye(self.capacity)
        for _ in range(max(1, math.ceil(math.log2(self.capacity)))):
            hop = tf.minimum(tf.matmul(hop, hop), 1.0)
        return hop

    def _feeds_outputs(self, connected):
        """(n, N) bool: nodes from which a path of connections leads to an output."""
        _, is_output, _ = self._slot_kinds()
        return tf.linalg.matvec(self._paths(connected), tf.cast(is_output, tf.float32), transpose_a=True) > 0.0

    def _scratch(self):
        # One resizable buffer per encoding and replica, created on first use outside any trace;
        # node values are written into it in place (a loop-carried tensor would be copied on every
        # update). Under a tf.distribute strategy every replica renders its own shard at the same
        # time, so each gets a plain variable of its own on its own device: a tf.Variable made
        # under the strategy's scope would be one mirrored variable shared by all of them.
        context = tf.distribute.get_replica_context()
        replica, device = 0, None
        if tf.distribute.has_strategy() and context is not None:
            replica = int(tf.get_static_value(context.replica_id_in_sync_group))
            device = next(iter(tf.nest.flatten(context.devices)), None)  # this replica's device
        buffers = self.__dict__.setdefault("_buffers", {})
        if replica not in buffers:
            with tf.init_scope(), (tf.device(device) if device else contextlib.nullcontext()):
                buffers[replica] = resource_variable_ops.ResourceVariable(
                    tf.zeros([0, 0]), shape=tf.TensorShape(None), trainable=False, name=f"cppn_node_values_{replica}")
        return buffers[replica]

    def _render(self, genomes, inputs, height, width):
        """Evaluate a population of CPPNs at every pixel, step after step, all genomes at once.

        Every node to evaluate (an output, or a live hidden node with a path to an output) of
        every genome gets one row of a scratch buffer (rows, pixels). Step s evaluates each
        genome's s-th such hidden node in position order (a topological order); the last step
        evaluates the outputs. Rows are sorted by (step, activation), so a step is one block of
        rows and an activation one slice of it. A step's pre-activations are the inputs' share
        (the inputs are the same for every genome: one small matmul) plus the weighted values
        of its hidden sources (gathered by row, summed per target row with a sorted segment
        sum); each slice goes through its activation and the block is written back in place.
        Row 0 stays zero: every step gets one zero-weight edge from it into its last row, so
        the segment sum always covers the whole block.
        """
        n = tf.shape(genomes["activation"])[0]
        plan = self._render_rows(genomes)
        input_weights, edge_sources, edge_targets, edge_w = self._step_operands(genomes, plan)
        buffer = self._scratch()
        pixels = tf.shape(inputs)[1]
        _fit_buffer(buffer, plan.rows, pixels)

        def body(s):
            incoming = buffer.sparse_read(edge_sources.read(s)) * edge_w.read(s)[:, None]
            pre = tf.matmul(input_weights.read(s), inputs) + tf.math.segment_sum(incoming, edge_targets.read(s))
            parts = tf.split(pre, plan.counts[s], num=len(_RENDER_FUNCTIONS))
            values = tf.concat([f(p) for f, p in zip(_RENDER_FUNCTIONS, parts)], axis=0)
            rows = tf.range(plan.step_first[s], plan.step_first[s] + plan.step_rows[s])
            buffer.scatter_update(tf.IndexedSlices(values, rows))
            return (s + 1,)

        tf.while_loop(lambda s: s <= plan.steps, body, (tf.constant(1),))
        output_rows = tf.reshape(tf.gather(plan.row_of, self.outputs, axis=1), (-1,))  # (n * C,), genome-major
        out = tf.reshape(buffer.sparse_read(output_rows), (n, self.channels, pixels))
        return self._to_image(tf.minimum(tf.abs(out), 1.0), n, height, width)

    def _render_rows(self, genomes):
        """The buffer rows of a render: which (genome, node) pairs are evaluated, at which step.

        Args:
            genomes: a batch of n genomes.

        Returns:
            A ``_RenderRows``: ``steps`` (the last step, the outputs'); ``scale`` (n, N), each
            node's activation's input scale; ``nodes`` (R, 2), the evaluated (genome, node) pairs
            of rows 1..R sorted by (step, activation), with ``key`` (R,) = step * 4 + activation;
            ``rows`` = R; ``row_of`` (n, N), each pair's row (0: not evaluated); ``counts``
            (steps + 1, 4), rows per (step, activation); ``step_rows`` and ``step_first``
            (steps + 1,), each step's row count and first row.
        """
        kinds = len(_RENDER_FUNCTIONS)
        _, is_output, is_hidden = self._slot_kinds()
        hidden = genomes["alive"] & is_hidden & self._feeds_outputs(genomes["connected"])
        evaluate = hidden | is_output
        rank = tf.argsort(tf.argsort(tf.where(hidden, genomes["position"], 3.0), axis=1, stable=True), axis=1,
                          stable=True)
        steps = tf.maximum(tf.reduce_max(tf.reduce_sum(tf.cast(hidden, tf.int32), axis=1)), 0) + 1  # n may be 0
        step = tf.where(hidden, rank + 1, tf.where(is_output, steps, 0))
        # Each node's activation's input scale, folded into its incoming weights (see _RENDER_FUNCTIONS).
        scale = tf.gather(tf.constant(_INPUT_SCALE), genomes["activation"])  # (n, N), of each target node

        # Rows 1..R: evaluated (genome, node) pairs sorted by (step, activation).
        nodes = tf.cast(tf.where(evaluate), tf.int32)  # (R, 2)
        key = tf.gather_nd(step, nodes) * kinds + tf.gather_nd(genomes["activation"], nodes)
        by_key = tf.argsort(key, stable=True)
        nodes, key = tf.gather(nodes, by_key), tf.gather(key, by_key)
        rows = tf.shape(nodes)[0]
        row_of = tf.scatter_nd(nodes, tf.range(1, rows + 1), tf.shape(evaluate))  # (n, N); 0: not evaluated
        counts = tf.reshape(tf.math.bincount(key, minlength=kinds * (steps + 1), maxlength=kinds * (steps + 1)),
                            (steps + 1, kinds))  # rows per (step, activation)
        step_rows = tf.reduce_sum(counts, axis=1)
        step_first = 1 + tf.cumsum(step_rows, exclusive=True)
        return _RenderRows(steps, evaluate, scale, nodes, key, rows, row_of, counts, step_rows, step_first)

    def _step_operands(self, genomes, plan):
        """Everything a render step reads, split by step (reading an element back copies nothing).

        Hidden-source edges into evaluated nodes become (target row, source row, weight), plus a
        zero-weight edge from row 0 into the last row of every non-empty step, sorted by target.

        Args:
            genomes: a batch of n genomes.
            plan: their ``_RenderRows``.

        Returns:
            Four TensorArrays of ``plan.steps + 1`` elements: the input weights (step rows, 4) of
            each step's rows, and its edges' source rows, target rows (counted from the step's
            first row) and weights.
        """
        _, _, is_hidden = self._slot_kinds()
        kinds = len(_RENDER_FUNCTIONS)
        steps, nodes, row_of, step_rows, step_first = plan.steps, plan.nodes, plan.row_of, plan.step_rows, plan.step_first
        connected = genomes["connected"]
        edges = tf.cast(tf.where(connected & plan.evaluate[:, :, None] & is_hidden), tf.int32)  # (E, 3)
        non_empty = tf.boolean_mask(tf.range(steps + 1), step_rows > 0)
        last_rows = tf.gather(step_first + step_rows - 1, non_empty)
        targets = tf.concat([tf.gather_nd(row_of, edges[:, :2]), last_rows], axis=0)
        sources = tf.concat([tf.gather_nd(row_of, tf.stack([edges[:, 0], edges[:, 2]], axis=1)),
                             tf.zeros_like(last_rows)], axis=0)
        edge_weights = tf.concat([_to_weight(tf.gather_nd(genomes["weight"], edges),
                                             tf.gather_nd(plan.scale, edges[:, :2])),
                                  tf.zeros(tf.shape(last_rows))], axis=0)
        by_target = tf.argsort(targets, stable=True)
        targets, sources, edge_weights = (tf.gather(t, by_target) for t in (targets, sources, edge_weights))
        edge_step = tf.gather(tf.concat([[0], plan.key // kinds], axis=0), targets)
        local_targets = targets - tf.gather(step_first, edge_step)

        edge_counts = tf.math.bincount(edge_step, minlength=steps + 1, maxlength=steps + 1)
        input_weights = tf.where(tf.gather_nd(connected[:, :, :NUM_INPUTS], nodes),
                                 _to_weight(tf.gather_nd(genomes["weight"][:, :, :NUM_INPUTS], nodes),
                                            tf.gather_nd(plan.scale, nodes)[:, None]), 0.0)
        input_weights = _split_by_step(input_weights, step_rows, steps)
        return (input_weights, *(_split_by_step(t, edge_counts, steps) for t in (sources, local_targets, edge_weights)))

    def _to_image(self, out, n, height, width):
        """Images (n, height, width, C) in [0, 1] from the output values ``out`` (n, C, pixels) in [0, 1]."""
        if self.channels == 1:
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
    bad = int((~np.isfinite(g["weight"])).sum())
    if bad:
        raise ValueError(f"CPPN weight genes must be finite and in [0, 1]; {bad} "
                         f"{'is' if bad == 1 else 'are'} NaN or infinite.")
    if g["weight"].min(initial=0.0) < 0 or g["weight"].max(initial=0.0) > 1:
        raise ValueError("CPPN weight genes must be finite and in [0, 1].")
    if g["activation"].min() < 0 or g["activation"].max() >= len(ACTIVATIONS):
        raise ValueError(f"CPPN activations must be in 0..{len(ACTIVATIONS) - 1}.")
    return True
