"""The bundled stand-ins have the real data's shapes and balance; the real readers refuse bad input."""

from __future__ import annotations

import numpy as np
import pytest

from projects.imbalanced_classification import data as fraud
from projects.imdb_bilstm import data as imdb


def test_imdb_standin_looks_like_keras_imdb():
    (x_tr, y_tr), (x_te, y_te) = imdb.load_bundled(2000, 500)
    assert len(x_tr) == len(y_tr) == 2000 and len(x_te) == len(y_te) == 500
    assert y_tr.mean() == 0.5 and y_te.mean() == 0.5  # balanced, as IMDB
    tokens = np.concatenate(list(x_tr))
    assert all(seq[0] == imdb.START for seq in x_tr)
    assert tokens.min() >= 1 and tokens.max() < imdb.MAX_FEATURES  # num_words=20000 id range
    lengths = np.array([len(s) for s in x_tr])
    assert 120 < np.median(lengths) < 260 and lengths.max() > 600  # IMDB's long tail
    # Zipf: the most frequent word id (4 = rank 1) is far more common than a rank-1000 word.
    words = tokens[tokens > imdb.OOV]
    assert np.bincount(words).argmax() == 4
    assert (tokens == 4).sum() > 20 * (tokens == 1003).sum()


def test_imdb_standin_word_ids_are_keras_ids():
    """keras.datasets.imdb: 0 padding, 1 start, 2 out of vocabulary, 3 unused; rank r is r + 3."""
    assert imdb.word_id(1) == 4 and imdb.word_id(19996) == 19999
    assert imdb.word_id(19997) == imdb.OOV  # past num_words=20000
    (x, _), _ = imdb.load_bundled(1000, 10)
    tokens = np.concatenate(list(x))
    assert (tokens == 3).sum() == 0 and (tokens == imdb.PAD).sum() == 0
    oov = (tokens == imdb.OOV).mean()
    assert 0.01 < oov < 0.15, oov  # the vocabulary's tail beyond num_words
    pos_words, neg_words = imdb.lexicon()
    assert len(set(pos_words) | set(neg_words)) == 2 * imdb.LEXICON_SIZE
    assert np.all(pos_words >= 30 + imdb.INDEX_FROM) and np.all(neg_words < 6000 + imdb.INDEX_FROM)


def test_imdb_standin_is_fixed():
    a, b = imdb.load_bundled(300, 100), imdb.load_bundled(300, 100)
    assert a[0][0].dtype == object and all(p.tobytes() == q.tobytes() for p, q in zip(a[0][0], b[0][0]))
    assert all(np.array_equal(p, q) for p, q in zip(a[0][0], b[0][0]))
    assert all(np.array_equal(p, q) for p, q in zip(a[1][0], b[1][0]))
    assert not np.array_equal(a[0][0][0], a[1][0][0])  # train and test are different reviews


def test_fraud_standin_has_kaggle_shape_and_rate():
    x, y = fraud.generate(fraud.REAL_ROWS)
    assert x.shape == (284807, 30) and x.dtype == np.float32
    assert y.sum() == 492  # 0.172%, as the Kaggle file
    assert np.all(np.diff(x[:, 0]) >= 0)  # sorted by Time, as the Kaggle file
    v14 = x[:, 14]  # column 0 is Time
    assert v14[y == 1].mean() < -0.8 and abs(v14[y == 0].mean()) < 0.05  # V14 tells frauds apart, on average
    assert fraud.generate(1000)[1].sum() == 2 and fraud.generate(1000)[0].tobytes() == fraud.generate(1000)[0].tobytes()


def test_fraud_csv_round_trip_through_the_csv_reader(tmp_path):
    path = fraud.write_csv(tmp_path / "creditcard.csv", 3000)
    header = path.read_text().splitlines()[0]
    assert header.startswith('"Time","V1"') and header.endswith('"Amount","Class"')
    x, y = fraud.read_csv(str(path))
    gx, gy = fraud.generate(3000)
    assert np.array_equal(x, gx) and np.array_equal(y, gy)
    x5, _ = fraud.read_csv(str(path), rows=5)
    assert x5.shape == (5, 30)


@pytest.mark.parametrize("content, message", [
    (None, "no file at data_path"),
    ("a,b\n1,2\n", 'header ending in "Class"'),
    ('"Time","Class"\n1,x\n', "not a row of numbers"),
    ('"Time","Class"\n', "no data rows"),
])
def test_fraud_csv_reader_refuses_bad_files(tmp_path, content, message):
    path = tmp_path / "creditcard.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(RuntimeError, match=message):
        fraud.read_csv(str(path))
