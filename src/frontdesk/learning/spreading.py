"""Label spreading: intent labels carried from labelled examples to unlabelled customer
messages through the encoder's nearest neighbours (``frontdesk train intents --unlabelled``).

A company has a few labelled examples per intent and many more messages that nobody labelled.
Every message, labelled or not, is a node of a graph joined to its ``NEIGHBOURS`` most similar
messages (cosine of the encoder's vectors, cubed so that close neighbours count for more).
Each labelled node holds its label; each unlabelled node starts from a prior, the intent
probabilities of a head trained on the labelled examples alone. The labels then flow along the
graph: ``F <- ALPHA * S F + (1 - ALPHA) * Y`` for ``STEPS`` steps, ``S`` the symmetrically
normalised graph (Zhou et al., 2004, "Learning with local and global consistency"). An
unlabelled message takes the label with the most mass; the heads are then trained on the
labelled and these inferred examples together.

The settings were chosen on a fifth of BANKING77's train.csv at 10 examples per intent, never on
its test.csv (docs/learning.md has the table): 5 neighbours and ``ALPHA`` 0.9 did as well as 10
neighbours and better than 15 or than 0.99, and starting the unlabelled nodes from a prior did
better than starting them empty.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from frontdesk.core.ports import Vector

NEIGHBOURS = 5
ALPHA = 0.9
STEPS = 20
BLOCK = 1024  # rows of the similarity matrix computed at once (memory: BLOCK x nodes floats)
MAX_UNLABELLED = 20_000  # the graph is built by brute force: quadratic in the nodes

Floats = npt.NDArray[np.float64]
Indexes = npt.NDArray[np.intp]


def neighbour_graph(vectors: Vector, neighbours: int = NEIGHBOURS) -> sp.csr_matrix:
    """The symmetric, normalised k-nearest-neighbour graph of L2-normalised ``vectors``."""
    count = len(vectors)
    k = min(neighbours, count - 1)
    if k < 1:
        return sp.csr_matrix((count, count), dtype=np.float64)
    rows: list[Indexes] = []
    cols: list[Indexes] = []
    weights: list[Floats] = []
    for start in range(0, count, BLOCK):
        block = vectors[start : start + BLOCK] @ vectors.T
        own = np.arange(start, start + len(block))
        block[own - start, own] = -np.inf  # never its own neighbour
        nearest = np.argpartition(-block, k - 1, axis=1)[:, :k]
        rows.append(np.repeat(own, k))
        cols.append(nearest.ravel())
        weights.append(np.maximum(np.take_along_axis(block, nearest, axis=1), 0.0).ravel() ** 3)
    graph = sp.csr_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
        shape=(count, count),
        dtype=np.float64,
    )
    graph = graph.maximum(graph.T).tocsr()
    degree = np.asarray(graph.sum(axis=1)).ravel()
    scale = sp.diags(1.0 / np.sqrt(np.where(degree > 0, degree, 1.0)))
    normalised: sp.csr_matrix = (scale @ graph @ scale).tocsr()
    return normalised


def spread(
    labelled: Vector,
    labels: Indexes,
    unlabelled: Vector,
    prior: Floats,
    *,
    neighbours: int = NEIGHBOURS,
    alpha: float = ALPHA,
    steps: int = STEPS,
) -> tuple[Indexes, Floats]:
    """The label index and its share of the mass for each unlabelled vector.

    ``labels`` are indexes into the columns of ``prior`` (one row per unlabelled vector, the
    probabilities of a head trained on the labelled vectors alone)."""
    classes = prior.shape[1]
    start = np.zeros((len(labelled) + len(unlabelled), classes), dtype=np.float64)
    start[np.arange(len(labelled)), labels] = 1.0
    start[len(labelled) :] = prior
    graph = neighbour_graph(np.vstack([labelled, unlabelled]).astype(np.float32), neighbours)
    mass = start.copy()
    for _ in range(steps):
        mass = alpha * (graph @ mass) + (1 - alpha) * start
    mass = mass[len(labelled) :]
    total = mass.sum(axis=1)
    share = mass.max(axis=1) / np.where(total > 0, total, 1.0)
    return mass.argmax(axis=1).astype(np.intp), share
