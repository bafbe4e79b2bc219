"""The recommender on a synthetic catalog whose right answers are known, plus FAISS checks."""

from pathlib import Path

import numpy as np
import pytest

from smartmkt.catalog import CatalogItem
from smartmkt.recommend.collaborative import CollaborativeConfig
from smartmkt.recommend.index import ItemIndex
from smartmkt.recommend.preferences import Preferences
from smartmkt.recommend.recommender import Recommender


def _catalog() -> list[CatalogItem]:
    """Two taste clusters: 20 westerns (ids 1-20) and 20 comedies (ids 21-40), price = id."""
    items = [CatalogItem(i, f"Dusty Trail {i}", 1950 + i, ("Western",), i * 100) for i in range(1, 21)]
    items += [CatalogItem(i, f"Laugh Riot {i}", 1970 + i, ("Comedy",), i * 100) for i in range(21, 41)]
    items += [CatalogItem(41, "Night of Fear", 1980, ("Horror", "Comedy"), 500)]
    return items


def _histories(rng: np.random.Generator) -> list[list[int]]:
    """Western fans buy westerns, comedy fans buy comedies."""
    histories = []
    for n in range(120):
        pool = np.arange(1, 21) if n % 2 == 0 else np.arange(21, 41)
        histories.append([int(x) for x in rng.choice(pool, size=8, replace=False)])
    return histories


@pytest.fixture(scope="module")
def model() -> Recommender:
    rng = np.random.default_rng(0)
    return Recommender.fit(_catalog(), _histories(rng), CollaborativeConfig(dim=16, epochs=40))


def test_history_drives_recommendations(model: Recommender) -> None:
    western_fan = [1, 2, 3, 4, 5]
    recs = model.recommend(western_fan, k=5)
    assert len(recs) == 5
    assert all(1 <= r.product_id <= 20 for r in recs), [r.product_id for r in recs]
    assert not {r.product_id for r in recs} & set(western_fan)


def test_filters_are_hard(model: Recommender) -> None:
    western_fan = [1, 2, 3]
    recs = model.recommend(
        western_fan, Preferences(genres=("Comedy",), price_max=30.0, excluded_genres=("Horror",)), k=10
    )
    assert recs
    for r in recs:
        assert 21 <= r.product_id <= 30  # comedies priced <= $30, never the horror comedy
    years = model.recommend([], Preferences(year_range=(1960, 1969)), k=50)
    assert {r.product_id for r in years} == set(range(10, 20))


def test_kids_never_get_horror(model: Recommender) -> None:
    recs = model.recommend([], Preferences(genres=("Comedy",), recipient="my kids"), k=50)
    assert 41 not in {r.product_id for r in recs}
    assert len(recs) == 20


def test_impossible_filters_give_nothing(model: Recommender) -> None:
    assert model.recommend([], Preferences(genres=("Western",), price_max=0.5)) == []


def test_cold_start_uses_text(model: Recommender) -> None:
    recs = model.recommend([], text="a funny laugh riot comedy", k=5)
    assert sum(21 <= r.product_id <= 41 for r in recs) >= 4


def test_save_load_round_trip(model: Recommender, tmp_path: Path) -> None:
    model.save(tmp_path / "rec")
    loaded = Recommender.load(tmp_path / "rec")
    assert [r.product_id for r in loaded.recommend([21, 22], k=5)] == [
        r.product_id for r in model.recommend([21, 22], k=5)
    ]
    assert not any(f.suffix == ".pkl" for f in (tmp_path / "rec").iterdir())
    assert loaded.item_item is not None and model.item_item is not None
    assert (loaded.item_item.weights != model.item_item.weights).nnz == 0
    assert loaded.item_item.scale == model.item_item.scale > 0


def test_ivf_index_agrees_with_exact_search() -> None:
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(50, 16))
    vectors = (centers[rng.integers(0, 50, 20_000)] + 0.3 * rng.normal(size=(20_000, 16))).astype(np.float32)
    exact = ItemIndex(vectors, exact_max_items=100_000)
    approx = ItemIndex(vectors, exact_max_items=1_000, nprobe=16)
    assert approx.approximate and not exact.approximate
    queries = vectors[:50] + 0.05
    _, e = exact.search(queries, 10)
    _, a = approx.search(queries, 10)
    recall = np.mean([len(set(e[i]) & set(a[i])) / 10 for i in range(len(queries))])
    assert recall >= 0.9
    allowed = np.arange(0, 20_000, 3)
    _, filtered = approx.search(queries[:5], 10, allowed=allowed)
    assert set(filtered.ravel()) <= set(allowed.tolist())


def test_the_order_of_purchases_matters() -> None:
    """Half the customers walk a chain of 30 products forwards, half backwards (six steps each).
    After 5, 6, 7 comes 8; after 7, 6, 5 comes 4: the same set, so only the order can tell."""
    items = [CatalogItem(i, f"Episode {i}", 1990, ("Drama",), 100) for i in range(1, 31)]
    rng = np.random.default_rng(1)
    histories = []
    for n, start in enumerate(rng.integers(1, 25, 400)):
        walk = list(range(int(start), int(start) + 6))
        histories.append(walk if n % 2 == 0 else [31 - p for p in walk])
    model = Recommender.fit(items, histories, CollaborativeConfig(dim=16, epochs=20))
    assert model.recommend([5, 6, 7], k=1)[0].product_id == 8
    assert model.recommend([7, 6, 5], k=1)[0].product_id == 4
    assert model.recommend([21, 20], k=1)[0].product_id == 19


def test_text_inputs_carry_a_never_bought_product_and_survive_a_round_trip(tmp_path: Path) -> None:
    """With ``text_inputs`` the transformer reads each product's text embedding too: products
    nobody bought still get a sequence vector from their text, close to the products their text
    resembles (a western fan's query scores unbought westerns above unbought comedies)."""
    from smartmkt.recommend import sequential
    from smartmkt.recommend.sequential import SequenceConfig

    unbought_westerns = [
        CatalogItem(i, f"Dusty Trail {i}", 1950 + i, ("Western",), 100) for i in range(42, 46)
    ]
    unbought_comedies = [CatalogItem(i, f"Laugh Riot {i}", 1970 + i, ("Comedy",), 100) for i in range(46, 50)]
    items = _catalog() + unbought_westerns + unbought_comedies
    config = SequenceConfig(dim=16, layers=1, epochs=30, text_inputs=True)
    model = Recommender.fit(
        items,
        _histories(np.random.default_rng(0)),
        CollaborativeConfig(dim=16, epochs=5),
        sequence_config=config,
    )
    assert model.encoder is not None
    vectors, _bias = sequential.item_arrays(model.encoder)
    westerns = vectors[[model.position[it.id] for it in unbought_westerns]]
    comedies = vectors[[model.position[it.id] for it in unbought_comedies]]
    for fan, liked, other in (
        ((1, 2, 3, 4, 5), westerns, comedies),
        ((21, 22, 23, 24, 25), comedies, westerns),
    ):
        query = sequential.query_vectors(model.encoder, [[model.position[p] for p in fan]])[0]
        assert (liked @ query).min() > (other @ query).max()  # by chance alone: no such margin
    model.save(tmp_path / "rec")
    loaded = Recommender.load(tmp_path / "rec")
    assert [r.product_id for r in loaded.recommend([1, 2, 3], k=8)] == [
        r.product_id for r in model.recommend([1, 2, 3], k=8)
    ]


def test_text_inputs_need_the_text_embeddings() -> None:
    from smartmkt.recommend.sequential import SequenceConfig, SequenceEncoder

    with pytest.raises(ValueError, match="text embedding"):
        SequenceEncoder(5, SequenceConfig(dim=8, text_inputs=True))


def test_a_model_saved_before_text_inputs_and_recency_still_loads(tmp_path: Path) -> None:
    """A model file written before the sequence part read text and the mean weighed recency (its
    meta names neither) loads as it was trained: ids alone, an even mean."""
    import json

    from smartmkt.recommend.sequential import SequenceConfig

    old = Recommender.fit(
        _catalog(),
        _histories(np.random.default_rng(0)),
        CollaborativeConfig(dim=16, epochs=5),
        sequence_config=SequenceConfig(dim=16, layers=1, epochs=2, text_inputs=False),
    )
    old.meta.mean_decay = 1.0
    old.item_item = None  # nor had it the item-to-item term
    old.save(tmp_path / "rec")
    meta_file = tmp_path / "rec" / "recommender.json"
    meta = json.loads(meta_file.read_text())
    del meta["mean_decay"], meta["sequence"]["text_inputs"]
    meta_file.write_text(json.dumps(meta))
    loaded = Recommender.load(tmp_path / "rec")
    assert loaded.meta.mean_decay == 1.0 and loaded.encoder is not None and loaded.encoder.project is None
    assert loaded.item_item is None
    assert [r.product_id for r in loaded.recommend([21, 22], k=5)] == [
        r.product_id for r in old.recommend([21, 22], k=5)
    ]


def test_the_item_to_item_term_reorders_the_index_candidates() -> None:
    """A candidate the index ranks low but the re-ranking term lifts comes first; the added part
    is in its score; what the filters refuse is never a candidate."""
    from smartmkt.recommend.recommender import Scorer

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 8)).astype(np.float32)
    scorer = Scorer(ItemIndex(vectors), np.arange(1000, 1300), vectors, np.zeros(300, np.float32), vectors)
    query, none = vectors[0], np.zeros(0, np.float32)
    allowed = np.ones(300, dtype=bool)
    plain = scorer.top(query, none, none, 5, allowed)
    order = [r.product_id - 1000 for r in plain]
    scores, rows = scorer.index.search(query, 60, allowed=allowed)
    lifted = int(rows[0][40])  # 41st by the index alone

    def boost(at: np.ndarray) -> np.ndarray:
        return np.where(at == lifted, 100.0, 0.0).astype(np.float32)

    reranked = scorer.top(query, none, none, 5, allowed, boost)
    assert reranked[0].product_id == 1000 + lifted
    assert reranked[0].score == pytest.approx(float(scores[0][40]) + 100.0, rel=1e-5)
    assert [r.product_id - 1000 for r in reranked[1:]] == order[:4]
    allowed[lifted] = False
    assert 1000 + lifted not in {r.product_id for r in scorer.top(query, none, none, 5, allowed, boost)}
