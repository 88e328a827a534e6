"""DIN's packed target attention against a padded-and-masked reference; histories at prediction time."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys import Interactions
from recsys.errors import DataError
from recsys.models import DIN
from recsys.models.deep.din import DINNet, packed_positions
from recsys.testing import tiny_interactions

FAST = dict(epochs=2, hidden_units=[8], attention_units=[8, 4], validation_fraction=0.0, num_threads=1, show_progress=False)


def _reference_interest(net: DINNet, reps: torch.Tensor, target: torch.Tensor, padded: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The textbook form: activation unit over [t, h, t-h, t*h] on a (B, L) padded history, padding masked."""
    h = reps[padded]  # padding positions hold arbitrary items
    t = target.unsqueeze(1).expand_as(h)
    x = torch.cat([t, h, t - h, t * h], -1)
    a = net.att_first(x)
    b, length, width = a.shape
    a = net.att_act(a.reshape(-1, width))
    score = net.att_out(net.att_tail(a)).reshape(b, length)
    if net.softmax:
        w = torch.softmax(score.masked_fill(~mask, float("-inf")), 1).nan_to_num(0.0)
    else:
        w = torch.where(mask, score, torch.zeros_like(score))
    return (w.unsqueeze(-1) * h).sum(1)


@pytest.mark.parametrize("act,softmax", [("dice", False), ("sigmoid", False), ("prelu", True)])
def test_packed_attention_equals_padded_and_masked_reference(act: str, softmax: bool) -> None:
    model = DIN(label_threshold=4, attention_activation=act, attention_softmax=softmax, **FAST).fit(tiny_interactions())
    net = model.module_.double().eval()
    n_items = net.emb.item_idx.shape[0]
    reps, _ = net.item_reps(None)
    g = torch.Generator().manual_seed(0)
    b, max_len = 9, 6
    length = torch.tensor([0, 1, 6, 3, 0, 2, 6, 5, 1])
    items = torch.randint(0, n_items, (b,), generator=g)
    padded = torch.randint(0, n_items, (b, max_len), generator=g)  # garbage beyond each length
    mask = torch.arange(max_len)[None, :] < length[:, None]
    row = torch.repeat_interleave(torch.arange(b), length)
    hist = padded[mask]  # row-major: each row's entries in order
    target = reps[items]
    with torch.no_grad():
        got = net.attention(target, reps, hist, row)
        want = _reference_interest(net, reps, target, padded, mask)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert torch.all(got[length == 0] == 0)  # empty history: zero interest
    # the padding really is garbage: another draw of it changes nothing in the reference either
    padded2 = torch.where(mask, padded, (padded + 7) % n_items)
    with torch.no_grad():
        torch.testing.assert_close(_reference_interest(net, reps, target, padded2, mask), want)


def test_history_entries_outside_a_rows_window_never_matter() -> None:
    model = DIN(label_threshold=4, **FAST).fit(tiny_interactions())
    net = model.module_.double().eval()
    end = torch.tensor([5, 12, 30, 30])
    length = torch.tensor([3, 0, 4, 2])
    user, item = torch.tensor([0, 1, 2, 3]), torch.tensor([4, 5, 6, 7])
    with torch.no_grad():
        before = net(user, item, end, length)[0]
        _, pos = packed_positions(end, length)
        outside = torch.ones(len(net.hist_items), dtype=torch.bool)
        outside[pos] = False
        net.hist_items[outside] = (net.hist_items[outside] + 3) % net.emb.item_idx.shape[0]
        after = net(user, item, end, length)[0]
    torch.testing.assert_close(before, after, rtol=0, atol=0)


def test_predict_proba_uses_only_positives_strictly_before_the_given_time() -> None:
    data = tiny_interactions()
    model = DIN(label_threshold=4, **{**FAST, "epochs": 10, "learning_rate": 0.01}).fit(data)
    assert data.timestamps is not None
    u = data.users.ids[0]
    first, last = data.timestamps.min(), data.timestamps.max()
    items = data.items.ids[:5]
    users = np.repeat(u, 5)
    early = model.predict_proba(users, items, timestamps=np.full(5, first))
    late = model.predict_proba(users, items, timestamps=np.full(5, last + 1))
    whole = model.predict_proba(users, items)
    np.testing.assert_array_equal(late, whole)  # after everything = the whole training history
    # before any interaction = an empty history: the interest vector is zero
    module = model.module_
    with torch.no_grad():
        net = module.double().eval()
        z = net(torch.full((5,), 0), torch.as_tensor(data.items.to_index(items), dtype=torch.long),
                torch.zeros(5, dtype=torch.long), torch.zeros(5, dtype=torch.long))[0]
    np.testing.assert_allclose(early, torch.sigmoid(z).numpy().astype(np.float32), rtol=1e-6)
    assert np.abs(early - whole).max() > 1e-4  # the history matters


def test_din_needs_timestamps() -> None:
    d = Interactions.from_arrays([1, 1, 2], [1, 2, 1], ratings=[5, 3, 4])
    with pytest.raises(DataError, match="needs timestamps"):
        DIN(label_threshold=4, **FAST).fit(d)


def test_timestamps_of_the_wrong_type_are_refused() -> None:
    model = DIN(label_threshold=4, **FAST).fit(tiny_interactions())
    with pytest.raises(DataError, match="numbers"):
        model.predict_proba([0], [1], timestamps=np.array(["2020-01-01"], dtype="datetime64[ns]"))
    with pytest.raises(DataError, match="align"):
        model.predict_proba([0], [1], timestamps=[1, 2])


def test_dice_and_prelu_match_their_textbook_forms() -> None:
    from recsys.models.deep._layers import Dice, PReLU

    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 6, dtype=torch.float64, generator=g, requires_grad=True)
    alpha = torch.randn(6, dtype=torch.float64, generator=g)
    dice = Dice(6).double()
    bn = torch.nn.BatchNorm1d(6, eps=1e-8, affine=False).double()
    with torch.no_grad():
        dice.alpha.copy_(alpha)
    a = alpha.clone().requires_grad_(True)
    y1 = dice(x)
    p = torch.sigmoid(bn(x))
    y2 = p * x + a * (1 - p) * x
    up = torch.randn(40, 6, dtype=torch.float64, generator=g)
    g1 = torch.autograd.grad(y1, (x, dice.alpha), up)
    g2 = torch.autograd.grad(y2, (x, a), up)
    torch.testing.assert_close(y1, y2)
    for u, v in zip(g1, g2):
        torch.testing.assert_close(u, v)
    torch.testing.assert_close(dice.running_var, bn.running_var)  # unbiased running variance, as BatchNorm1d
    dice.eval(), bn.eval()
    torch.testing.assert_close(dice(x), torch.sigmoid(bn(x)) * x + alpha * (1 - torch.sigmoid(bn(x))) * x)
    ours, ref = PReLU(6).double(), torch.nn.PReLU(6, init=0.25).double()
    y1, y2 = ours(x), ref(x)
    torch.testing.assert_close(y1, y2)
    for u, v in zip(torch.autograd.grad(y1, (x, ours.weight), up), torch.autograd.grad(y2, (x, ref.weight), up)):
        torch.testing.assert_close(u, v)


def test_catalogue_path_equals_the_per_row_gather_in_values_and_gradients() -> None:
    """The sparse whole-catalogue map (pooling weights of the genre list included) against the gather."""
    model = DIN(label_threshold=4, **FAST).fit(tiny_interactions())
    emb = model.module_.double().train().emb
    assert emb.multi_slices["item"]  # the genre list is a multi-valued field: its pooling is exercised
    g = torch.Generator().manual_seed(3)
    for side in ("user", "item"):
        n = (emb.user_idx if side == "user" else emb.item_idx).shape[0]
        fields, first, _ = emb.side(side, torch.arange(n))
        up_f = torch.randn(fields.shape, dtype=torch.float64, generator=g)
        up_1 = torch.randn(first.shape, dtype=torch.float64, generator=g)
        (want,) = torch.autograd.grad((fields * up_f).sum() + (first * up_1).sum(), emb.table.weight)
        fields2, first2 = emb.catalogue(side)
        (got,) = torch.autograd.grad((fields2 * up_f).sum() + (first2 * up_1).sum(), emb.table.weight)
        torch.testing.assert_close(fields2, fields, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(first2, first, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
        assert torch.all(got[0] == 0)  # the padding row never gets a gradient
        idx = torch.tensor([0, n - 1, 0])
        _, _, sq = emb.side(side, idx)
        torch.testing.assert_close(emb.squared_norm(side, idx), sq.sum())
