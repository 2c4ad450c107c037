"""CMA-ME over CPPN weights: a separable CMA-ES per class on the weights of a fixed CPPN topology.

:class:`~keras_fool.evolution.cma_me.CMAME` searches pixels; this is the same emitter, ranked by its own
class (``ranking="class"``, the setting that measured 200 times stronger than CMA-ME's improvement ranking
over pixels, RESULTS.md issue 23), over the space :class:`~keras_fool.evolution.nes.NES` searches for a
CPPN: the weight genes (in [0, 1], weights in [-10, 10]) of each class's own network, whose topology stays
fixed. The improvement ranking does not carry over: a CPPN's weights mean nothing in another class's
topology, so an emitter cannot follow whichever cell its candidates improve.

Generation 0 is NES's: ``pool`` random CPPNs grown by ``grow`` rounds of adding nodes and connections;
each class takes the one it likes best as its topology and its emitter's mean. Every generation, each class
still below ``class_target`` samples ``samples`` candidates ``m + sigma sqrt(C) z`` (``z`` only on the
connections its network has, clipped to the genes' [0, 1]) and scores them with its mean (``samples + 1``
images, as NES); the best half by the class's log-probability update ``m``, ``sigma`` and the diagonal ``C``
(:func:`~keras_fool.evolution.cma_me.sep_cma_update`, with the class's number of connections as its
dimension). Every image competes for every cell by the MAP-Elites rule, so one class's candidates are
stepping stones for the others. An emitter whose step size collapses below
:data:`~keras_fool.evolution.cma_me.MIN_SIGMA` starts again where its mean is, with fresh ``sigma``,
``C`` and paths.

Budget, stopping at ``class_target``, ``spend_all``, checkpoints and resuming are NES's (a resumed run
equals an uninterrupted one: randomness is keyed by seed and generation).
"""

from __future__ import annotations

import tensorflow as tf

from keras_fool.encodings.cppn import CPPNEncoding
from keras_fool.evolution.archive import update_elites
from keras_fool.evolution.cma_me import MIN_SIGMA, log_weights, sep_cma_update
from keras_fool.evolution.nes import LOG_FLOOR, NES, SAMPLES

__all__ = ["CPPNCMAME", "MAX_SIGMA"]

MAX_SIGMA = 0.5  # half the genes' [0, 1] range: a larger step samples the clipped bounds more than the space
STATE_KEYS = ("sigma", "cov", "p_sigma", "p_c", "age")


class CPPNCMAME(NES):
    """CMA-ME with class ranking over CPPN weights: one sep-CMA-ES per class, competing for every cell.

    Args:
        target: a :class:`~keras_fool.target.BaseTarget`.
        encoding: a :class:`~keras_fool.encodings.CPPNEncoding` of the target's image shape.
        classes: class indices that get a cell; all of the target's classes by default.
        seed: the run's seed.
        samples: candidates per class and generation (lambda; the best ``samples // 2`` are the parents).
        sigma: each emitter's step size at a (re)start, in weight genes (which map [0, 1] to [-10, 10]); NES's
            perturbation, 0.03, by default.
        pool: random CPPNs evaluated in generation 0 (as :class:`~keras_fool.evolution.NES`).
        grow: mutation rounds each of the pool's CPPNs gets, nodes and connections only added.
        class_target: a class whose elite reaches this confidence is searched no more.
        eval_batch_size: images decoded and scored at once.
        spend_all: go on past ``generations`` while the evaluations stopped classes left cover another
            generation (as :class:`~keras_fool.evolution.NES`).
        adopt: a class whose elite another class's search found moves its emitter there, with a fresh step size
            and covariance (as :class:`~keras_fool.evolution.NES`).

    Attributes:
        archive: the :class:`~keras_fool.evolution.archive.ClassArchive` (best CPPN per class).
        theta: (C, N, N) each class's mean, in weight genes.
        cma_state: ``sigma`` (C,), ``cov``, ``p_sigma``, ``p_c`` (C, N, N), ``age`` (C,) int32.
        topology: each class's CPPN (its weights replaced by ``theta`` when decoded).
    """

    method = "cma-me"
    config_keys = ("target", "encoding", "classes", "seed", "emitters", "samples")

    def __init__(self, target, encoding, classes=None, seed=0, samples=SAMPLES, sigma=None, pool=160, grow=40,
                 class_target=0.9999, eval_batch_size=256, spend_all=True, adopt=False):
        if not isinstance(encoding, CPPNEncoding):
            raise TypeError("CPPNCMAME searches CPPN weights: the encoding must be a CPPNEncoding (CMAME searches "
                            f"pixels). Received: {type(encoding).__name__}")
        super().__init__(target, encoding, classes=classes, seed=seed, samples=samples, sigma=sigma, pool=pool,
                         grow=grow, class_target=class_target, eval_batch_size=eval_batch_size, spend_all=spend_all,
                         adopt=adopt)
        if self.sigma > MAX_SIGMA:
            raise ValueError(f"sigma must be at most {MAX_SIGMA} (half the weight genes' range). "
                             f"Received: sigma={sigma}")
        self.cma_state = None

    def get_config(self):
        config = {"method": self.method, "target": self.target.get_config(), "encoding": self.encoding.get_config(),
                  "classes": self.archive.labels.tolist(), "seed": self.seed, "emitters": self.archive.cells,
                  "samples": self.samples, "sigma": self.sigma, "ranking": "class", "space": "cppn-weights",
                  "pool": self.pool, "grow": self.grow, "class_target": self.class_target}
        if self.spend_all:
            config["spend_all"] = True
        if self.adopt:
            config["adopt"] = True
        return config

    def _restart_points(self, moved):
        fresh = self._fresh(self.theta)
        self.cma_state = {k: tf.where(tf.reshape(moved, [-1] + [1] * (len(v.shape) - 1)), fresh[k], v)
                          for k, v in self.cma_state.items()}

    # ---- the emitters' state ---------------------------------------------------------------------
    def _fresh(self, theta):
        count = tf.shape(theta)[0]
        return {"sigma": tf.fill([count], tf.constant(self.sigma, tf.float32)), "cov": tf.ones_like(theta),
                "p_sigma": tf.zeros_like(theta), "p_c": tf.zeros_like(theta), "age": tf.zeros([count], tf.int32)}

    def _start(self, climb=True):
        fitness = super()._start(climb)
        self.velocity = None  # NES's running direction: CMA-ES keeps its paths instead
        self.cma_state = self._fresh(self.theta)
        return fitness

    def _point_state(self):
        return {"theta": self.theta, **{f"cma/{k}": v for k, v in self.cma_state.items()}}

    def _set_point_state(self, arrays):
        if arrays["cma/sigma"].min() <= 0.0 or arrays["cma/cov"].min() <= 0.0:
            raise ValueError("'cma/sigma' and 'cma/cov' must be positive")
        self.theta = tf.constant(arrays["theta"])
        self.cma_state = {k: tf.constant(arrays[f"cma/{k}"]) for k in STATE_KEYS}

    # ---- one generation, compiled -----------------------------------------------------------------
    def _step_impl(self, theta, state, topology, cells, elites, fitness, generation):
        """One generation for the classes ``cells`` (G,), whose means are ``theta`` (G, N, N) and emitter state
        ``state``. Returns their new means and state, the archive's new elites and fitness, and whether every
        probability was finite."""
        lam, mu, count = self.samples, self.samples // 2, self.samples + 1
        group = tf.shape(theta)[0]
        dims = int(theta.shape[1]) * int(theta.shape[2])
        # Drawn for every cell and then picked, so a class's noise does not depend on which classes are active.
        z = tf.random.stateless_normal([self.archive.cells, lam, *theta.shape[1:]],
                                       tf.stack([tf.constant(self.seed, tf.int32), generation]))
        mask = tf.cast(topology["connected"], tf.float32)  # (G, N, N)
        z = tf.gather(z, cells) * mask[:, None]
        root = tf.sqrt(state["cov"])
        candidates = theta[:, None] + state["sigma"][:, None, None, None] * root[:, None] * z
        points = tf.concat([tf.clip_by_value(candidates, 0.0, 1.0), theta[:, None]], axis=1)  # (G, count, N, N)
        flat = tf.reshape(points, [group * count, *theta.shape[1:]])
        flat_topology = {k: tf.repeat(v, count, axis=0) for k, v in topology.items()}
        images = self._images_of(flat, flat_topology)
        probabilities = tf.cast(self.target(images), tf.float32)
        finite = tf.reduce_all(tf.math.is_finite(probabilities))

        labels = tf.repeat(tf.gather(self._labels, cells), count)
        own = tf.reshape(tf.gather(probabilities, labels, axis=1, batch_dims=1), (group, count))
        values = tf.math.log(tf.maximum(own[:, :lam], LOG_FLOOR))
        order = tf.argsort(values, axis=1, direction="DESCENDING", stable=True)[:, :mu]
        flat_mask = tf.reshape(mask, [group, dims])
        flat_state = {"mean": tf.reshape(theta, [group, dims]), "sigma": state["sigma"], "age": state["age"],
                      **{k: tf.reshape(state[k], [group, dims]) for k in ("cov", "p_sigma", "p_c")}}
        updated = sep_cma_update(flat_state, tf.gather(tf.reshape(z, [group, lam, dims]), order, batch_dims=1),
                                 log_weights(tf.fill([group], mu), mu), dims=tf.reduce_sum(flat_mask, axis=1))
        searched = flat_mask > 0.0
        new = {k: tf.reshape(tf.where(searched, updated[k], flat_state[k]), tf.shape(theta))
               for k in ("cov", "p_sigma", "p_c")}
        new_theta = tf.clip_by_value(tf.reshape(updated["mean"], tf.shape(theta)), 0.0, 1.0)
        new["sigma"] = tf.minimum(updated["sigma"], MAX_SIGMA)
        new["age"] = updated["age"]
        # An emitter whose step size collapsed starts again where it is.
        restart = (new["sigma"] < MIN_SIGMA) | ~tf.math.is_finite(new["sigma"])
        fresh = self._fresh(new_theta)
        new = {k: tf.where(tf.reshape(restart, [-1] + [1] * (len(v.shape) - 1)), fresh[k], v) for k, v in new.items()}

        elites, fitness, _ = update_elites(elites, fitness, {**flat_topology, "weight": flat}, probabilities,
                                           self._labels, finite)
        # A non-finite generation changes nothing.
        new = {k: tf.where(finite, v, state[k]) for k, v in new.items()}
        return tf.where(finite, new_theta, theta), new, elites, fitness, finite

    # ---- the Python driver (NES's, with the emitters' state in place of the running direction) --------------
    def _step_state(self):
        return self.cma_state

    def _set_step_state(self, state):
        self.cma_state = state

    def title(self):
        return f"{self.model_names()}, CMA-ME (class ranking) over CPPN weights, generation {self.generation}"
