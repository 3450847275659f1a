"""Stage 1 of CNN text hashing (Xu et al., IJCAI 2015): target codes from a locality-preserving embedding of the
texts' explicit (keyword) features, as Self-Taught Hashing builds them.

The paper's text could not be read (METHODS.md section 16): this follows the first author's companion code
(jacoxu/short-text-hashing-HMTT, "modified from Self-Taught Hashing"), [inference]:

1. TF-IDF features of the training texts (`tfidf`; padding and unknown words left out), rows L2-normalised;
2. a cosine kNN graph W (`knn_graph`, k = 25 as in HMTT): W_ij = cos(x_i, x_j) where j is among the k nearest
   of i or i among those of j, else 0;
3. Laplacian eigenmaps (`laplacian_eigenmap`): with D = diag(W 1) and L = D - W, the `bits` generalised
   eigenvectors of L y = lambda D y after the trivial one (y constant, lambda = 0), which minimise

       sum_ij W_ij ||y_i - y_j||^2 / 2 = tr(Y^T L Y)   subject to   Y^T D Y = I,  Y^T D 1 = 0;

4. each dimension thresholded at its median (as HMTT's `baseline_LSI_learn.m`): balanced bits.

`use_labels` (not the paper's base method, which uses no labels; its label variants could not be read) keeps
only the edges between texts of one class: our choice. A tiny constant (`EDGE_FLOOR`) is added to every kept edge
so that a text with no word in common with its neighbours still has a degree (D invertible).
"""

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from saeh.data.text import FIRST_WORD_ID
from saeh.errors import SaehError

NEIGHBOURS = 25  # HMTT_learn.m and doExperiment.m
EDGE_FLOOR = 1e-6
DENSE_LIMIT = 2000  # texts up to which the eigenproblem is solved densely (exact; eigsh above)
CHUNK_ROWS = 1024  # rows of the similarity matrix formed at once


def term_counts(ids, vocabulary_size):
    """(N, vocabulary_size) sparse counts of the word ids in `ids` ((N, length) ints); padding and unknown words
    (ids below FIRST_WORD_ID) are not words."""
    ids = np.asarray(ids)
    rows, columns = np.nonzero(ids >= FIRST_WORD_ID)
    return scipy.sparse.csr_matrix((np.ones(len(rows)), (rows, ids[rows, columns])),
                                   shape=(len(ids), vocabulary_size))


def inverse_document_frequency(counts):
    """idf_w = log(N / df_w) over the rows of `counts` (0 for a word in no row)."""
    document_frequency = np.asarray((counts > 0).sum(axis=0)).ravel()
    idf = np.zeros(counts.shape[1])
    present = document_frequency > 0
    idf[present] = np.log(counts.shape[0] / document_frequency[present])
    return idf


def tfidf(counts, idf):
    """Rows of `counts` weighted by `idf` and L2-normalised (a row with no weight stays zero)."""
    weighted = scipy.sparse.csr_matrix(counts.multiply(idf[None, :]))
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    return scipy.sparse.diags(np.where(norms > 0, 1.0 / np.maximum(norms, 1e-300), 0.0)) @ weighted


def nearest_rows(queries, features, k, exclude_self=False, allowed=None):
    """(len(queries), k) rows of `features` of the largest cosine with each query (rows L2-normalised), and those
    cosines; `allowed(first, last)`: a boolean (chunk, N) mask of the candidates of queries first..last-1."""
    rows, values = [], []
    for first in range(0, queries.shape[0], CHUNK_ROWS):
        last = min(first + CHUNK_ROWS, queries.shape[0])
        similarity = np.asarray((queries[first:last] @ features.T).todense(), dtype=np.float64)
        if exclude_self:
            similarity[np.arange(last - first), np.arange(first, last)] = -np.inf
        if allowed is not None:
            similarity[~allowed(first, last)] = -np.inf
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        rows.append(nearest)
        values.append(np.take_along_axis(similarity, nearest, axis=1))
    return np.concatenate(rows), np.concatenate(values)


def knn_graph(features, k=NEIGHBOURS, labels=None):
    """The symmetric sparse kNN graph of the rows of `features` (module docstring, step 2); with `labels` ((N,)
    class ids), only neighbours of the same class."""
    count = features.shape[0]
    k = min(k, count - 1)
    allowed = None
    if labels is not None:
        labels = np.asarray(labels)

        def allowed(first, last):
            return labels[first:last, None] == labels[None, :]
    nearest, cosine = nearest_rows(features, features, k, exclude_self=True, allowed=allowed)
    rows = np.repeat(np.arange(count), k)
    kept = np.isfinite(cosine.ravel())
    weights = np.maximum(cosine.ravel()[kept], 0.0) + EDGE_FLOOR
    graph = scipy.sparse.csr_matrix((weights, (rows[kept], nearest.ravel()[kept])), shape=(count, count))
    return graph.maximum(graph.T)


def laplacian_eigenmap(graph, dimensions, seed=0):
    """(N, dimensions) Y: the generalised eigenvectors of (D - W) y = lambda D y of the smallest eigenvalues after
    the trivial one, Y^T D Y = I (module docstring, step 3); and their eigenvalues. Solved as the largest
    eigenvectors v of D^-1/2 W D^-1/2 - u u^T (y = D^-1/2 v), where u = D^1/2 1 / |D^1/2 1| is the trivial one,
    deflated so that it is left out even when the graph falls apart into pieces (several eigenvalues 0 of L):
    densely up to DENSE_LIMIT texts, else by Lanczos (eigsh) from a seeded start."""
    count = graph.shape[0]
    if dimensions + 1 >= count:
        raise SaehError(f"stage 1 needs more texts than bits + 1; got {count} texts for {dimensions} bits")
    degree = np.asarray(graph.sum(axis=1)).ravel()
    if np.any(degree <= 0):
        raise SaehError("stage 1's graph has a text without neighbours (a class of one text under use_labels)")
    scale = scipy.sparse.diags(1.0 / np.sqrt(degree))
    normalised = scale @ graph @ scale
    trivial = np.sqrt(degree) / np.linalg.norm(np.sqrt(degree))
    if count <= DENSE_LIMIT:
        values, vectors = np.linalg.eigh(normalised.toarray() - np.outer(trivial, trivial))
    else:
        deflated = scipy.sparse.linalg.LinearOperator(
            (count, count), matvec=lambda v: normalised @ v - trivial * (trivial @ v), dtype=np.float64)
        start = np.random.default_rng(seed).standard_normal(count)
        values, vectors = scipy.sparse.linalg.eigsh(deflated, k=dimensions, which="LA", v0=start)
    order = np.argsort(-values)[:dimensions]
    return vectors[:, order] / np.sqrt(degree)[:, None], 1.0 - values[order]


def median_bits(embedding):
    """Each column of `embedding` thresholded at its median: (N, dims) float32 0/1."""
    return (embedding > np.median(embedding, axis=0, keepdims=True)).astype(np.float32)


def stage1_codes(ids, vocabulary_size, bits, seed=0, k=NEIGHBOURS, labels=None):
    """Stage 1 on the training texts' token ids ((N, length)): (codes (N, bits) 0/1 float32, their TF-IDF
    features, the idf) (module docstring)."""
    counts = term_counts(ids, vocabulary_size)
    idf = inverse_document_frequency(counts)
    features = tfidf(counts, idf)
    embedding, _ = laplacian_eigenmap(knn_graph(features, k, labels), bits, seed)
    return median_bits(embedding), features, idf


def out_of_sample_codes(ids, vocabulary_size, idf, train_features, train_codes, k=NEIGHBOURS):
    """Targets of texts outside stage 1 (the validation texts): the mean stage-1 code of their k nearest training
    texts by TF-IDF cosine (no label used)."""
    features = tfidf(term_counts(ids, vocabulary_size), idf)
    nearest, _ = nearest_rows(features, train_features, min(k, train_features.shape[0]))
    return train_codes[nearest].mean(axis=1).astype(np.float32)
