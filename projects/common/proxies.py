"""Quick proxies of how hard a data set is, in NumPy and SciPy: what a simple model scores on it.

The bundled stand-ins have structure a simple model misses: a bag of words misreads IMDB's negations
and concessions, a linear model misses the frauds that no plane separates. The tests check these
proxies at small sizes instead of training the examples' models at full size;
bench/bench_calibration.py records them at full size beside the trainings.
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits


def _counts(sequences, num_words: int, maxlen: int) -> np.ndarray:
    """Token counts over the last `maxlen` tokens of each sequence (what pad_sequences keeps)."""
    tokens = np.concatenate([np.asarray(s, dtype=np.int64)[-maxlen:] for s in sequences])
    return np.bincount(tokens, minlength=num_words).astype(np.float64)


def count_classifier_accuracy(x_train, y_train, x_test, y_test, maxlen: int = 200, num_words: int = 20000) -> float:
    """Test accuracy of a bag-of-words count classifier (multinomial naive Bayes, Laplace smoothing).

    Sequences are cut to their last `maxlen` tokens, as the examples' `pad_sequences` does.
    """
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    pos = _counts(x_train[y_train == 1], num_words, maxlen) + 1.0
    neg = _counts(x_train[y_train == 0], num_words, maxlen) + 1.0
    log_ratio = np.log(pos / pos.sum()) - np.log(neg / neg.sum())
    prior = np.log((y_train == 1).mean() / (y_train == 0).mean())
    scores = np.array([log_ratio[np.asarray(s, dtype=np.int64)[-maxlen:]].sum() for s in x_test]) + prior
    return float(((scores > 0) == (y_test == 1)).mean())


def bag_of_words_accuracy(x_train, y_train, x_test, y_test, maxlen: int = 200, num_words: int = 20000,
                          l2: float = 10.0) -> float:
    """Test accuracy of a bag-of-words logistic regression (counts of each word id, L2 penalty, conjugate gradients).

    Sequences are cut to their last `maxlen` tokens, as the examples' `pad_sequences` does; the
    features are log(1 + count) of each word id: what the words say, whatever their order.
    """
    from scipy import sparse
    from scipy.optimize import minimize

    def features(seqs) -> sparse.csr_matrix:
        rows = [np.asarray(s, dtype=np.int64)[-maxlen:] for s in seqs]
        indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
        m = sparse.csr_matrix((np.ones(indptr[-1]), np.concatenate(rows), indptr), shape=(len(rows), num_words))
        m.sum_duplicates()
        m.data = np.log1p(m.data)
        return m

    xtr, xte = features(x_train), features(x_test)
    y = np.asarray(y_train).astype(np.float64)

    def loss(beta: np.ndarray) -> tuple[float, np.ndarray]:
        z = xtr @ beta[:-1] + beta[-1]
        p = 1.0 / (1.0 + np.exp(-z))
        nll = np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * beta[:-1] @ beta[:-1]
        g = p - y
        return float(nll), np.concatenate([xtr.T @ g + l2 * beta[:-1], [g.sum()]])

    with threadpool_limits(1):  # vector-sized BLAS calls: a pool of threads only waits on a busy machine
        beta = minimize(loss, np.zeros(num_words + 1), jac=True, method="CG", options={"maxiter": 200}).x
    predicted = (xte @ beta[:-1] + beta[-1]) > 0
    return float((predicted == (np.asarray(y_test) == 1)).mean())


def logistic_regression(x_train, y_train, x_val, y_val, class_weight: dict[int, float] | None = None,
                        l2: float = 1e-6, iterations: int = 25) -> dict[str, float]:
    """A (class-weighted) logistic regression fitted by Newton's method; its validation confusion counts.

    Returns val_accuracy, val_recall, val_tp, val_fp, val_fn, val_tn and train_recall, train_fp
    at the 0.5 threshold, and val_fp_at_recall_0.7: the normal rows flagged at the threshold that
    catches 70% of the validation frauds. A small L2 penalty keeps Newton's steps finite on separable data.
    """
    y_train, y_val = np.asarray(y_train).astype(np.float64), np.asarray(y_val).astype(np.int64)
    cw = class_weight or {0: 1.0, 1: 1.0}
    w = np.where(y_train == 1, cw[1], cw[0])
    w = w / w.sum()
    xb = np.column_stack([np.asarray(x_train, dtype=np.float64), np.ones(len(x_train))])
    beta = np.zeros(xb.shape[1])
    with threadpool_limits(1):  # small matrices: a pool of threads only waits on a busy machine
        for _ in range(iterations):
            p = 1.0 / (1.0 + np.exp(-np.clip(xb @ beta, -30, 30)))
            grad = xb.T @ (w * (p - y_train)) + l2 * beta
            hess = (xb * (w * p * (1 - p))[:, None]).T @ xb + l2 * np.eye(len(beta))
            step = np.linalg.solve(hess, grad)
            beta -= step
            if np.max(np.abs(step)) < 1e-8:
                break

    def confusion(x, y) -> dict[str, int]:
        flag = np.column_stack([np.asarray(x, dtype=np.float64), np.ones(len(x))]) @ beta > 0
        return {"tp": int((flag & (y == 1)).sum()), "fp": int((flag & (y == 0)).sum()),
                "fn": int((~flag & (y == 1)).sum()), "tn": int((~flag & (y == 0)).sum())}

    def fp_at_recall(x, y, recall: float) -> int:  # normal rows flagged at the threshold that catches `recall`
        score = np.column_stack([np.asarray(x, dtype=np.float64), np.ones(len(x))]) @ beta
        frauds = np.sort(score[y == 1])[::-1]
        need = frauds[max(0, int(np.ceil(recall * len(frauds))) - 1)]
        return int((score[y == 0] >= need).sum())

    v, t = confusion(x_val, y_val), confusion(x_train, y_train.astype(np.int64))
    return {"val_accuracy": (v["tp"] + v["tn"]) / len(y_val), "val_recall": v["tp"] / max(1, v["tp"] + v["fn"]),
            **{f"val_{k}": n for k, n in v.items()},
            "train_recall": t["tp"] / max(1, t["tp"] + t["fn"]), "train_fp": t["fp"],
            "val_fp_at_recall_0.7": fp_at_recall(x_val, y_val, 0.7)}
