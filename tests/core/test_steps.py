"""step_ids_from_delimiters (spec §1, concatenated rows) on hand-made rows and against the loop reference."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import empg
from empg import reference

# A toy vocabulary: header = (10, 11) ("<|im_start|>", "assistant"), end-of-turn = 12; prompt and
# observation tokens are 1–7, padding is 0.
H0, H1, END = 10, 11, 12
HEADER = [H0, H1]


def ids(rows, **kw):
    return empg.step_ids_from_delimiters(torch.tensor(rows), start=HEADER, end=[END], **kw).tolist()


def test_two_turns_with_prompt_observation_and_padding():
    #          prompt   header    act  act  end  obs obs  header   act end  pad pad
    row = [[1, 2, H0, H1, 5, 6, END, 3, 4, H0, H1, 7, END, 0, 0]]
    exp = [[-1, -1, -1, -1, 0, 0, 0, -1, -1, -1, -1, 1, 1, -1, -1]]
    assert ids(row) == exp
    mask = [[1] * 13 + [0, 0]]
    assert ids(row, mask=torch.tensor(mask).bool()) == exp


def test_first_step_open():
    # The first turn's header sits in the prompt: the row starts inside step 0.
    row = [[5, 6, END, 3, H0, H1, 7, END]]
    assert ids(row, first_step_open=True) == [[0, 0, 0, -1, -1, -1, 1, 1]]
    # Without the option, tokens before the first header belong to no step.
    assert ids(row) == [[-1, -1, -1, -1, -1, -1, 0, 0]]


def test_truncated_step_keep_or_drop():
    # The second turn hit the length limit before its end-of-turn.
    row = [[1, H0, H1, 5, END, 3, H0, H1, 6, 7]]
    assert ids(row, truncated="keep") == [[-1, -1, -1, 0, 0, -1, -1, -1, 1, 1]]
    assert ids(row, truncated="drop") == [[-1, -1, -1, 0, 0, -1, -1, -1, -1, -1]]


def test_truncated_step_followed_by_padding():
    row = [[1, H0, H1, 5, 6, 0, 0]]
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0]]).bool()
    assert ids(row, mask=mask) == [[-1, -1, -1, 0, 0, -1, -1]]
    assert ids(row, mask=mask, truncated="drop") == [[-1] * 7]


def test_end_under_padding_does_not_close():
    # The END token is masked (padding that happens to carry id 12): the step stays open (truncated).
    row = [[H0, H1, 5, END]]
    mask = torch.tensor([[1, 1, 1, 0]]).bool()
    assert ids(row, mask=mask) == [[-1, -1, 0, -1]]
    assert ids(row, mask=mask, truncated="drop") == [[-1, -1, -1, -1]]


def test_masked_token_inside_a_step_does_not_split_it():
    row = [[H0, H1, 5, 6, 7, END]]
    mask = torch.tensor([[1, 1, 1, 0, 1, 1]]).bool()
    assert ids(row, mask=mask) == [[-1, -1, 0, -1, 0, 0]]


def test_header_inside_an_open_step_starts_a_new_step():
    # Step 0 has no end-of-turn before the next header; the header tokens themselves are in no step.
    row = [[H0, H1, 5, H0, H1, 6, END]]
    assert ids(row) == [[-1, -1, 0, -1, -1, 1, 1]]
    # With "drop", step 0 is unfinished and dropped; step 1 is renumbered 0.
    assert ids(row, truncated="drop") == [[-1, -1, -1, -1, -1, 0, 0]]


def test_partial_header_is_not_a_header():
    # A lone 11 ("assistant" in an observation) or a lone 10 does not open a step.
    row = [[1, H1, 5, END, H0, 6, END, H0, H1, 7, END]]
    assert ids(row) == [[-1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0]]


def test_multi_token_end_and_other_input_forms():
    # end = (12, 13): both end tokens belong to the step.
    row = np.array([[H0, H1, 5, 12, 13, 4, H0, H1, 6, 12, 13]])
    out = empg.step_ids_from_delimiters(row, start=torch.tensor(HEADER), end=(12, 13))
    assert out.dtype == torch.int64
    assert out.tolist() == [[-1, -1, 0, 0, 0, -1, -1, -1, 1, 1, 1]]
    # An int is a one-token delimiter.
    out1 = empg.step_ids_from_delimiters(torch.tensor([[9, 5, 12, 9, 6]]), start=9, end=12)
    assert out1.tolist() == [[-1, 0, 0, -1, 1]]


def test_delimiters_sharing_their_last_token():
    # ChatML-like: header = (S, "assistant", NL), end = (E, NL); both end with NL (= 9).
    S, A, NL, EOT = 20, 21, 9, 22
    row = [[1, NL, S, A, NL, 5, 6, EOT, NL, 3, NL, S, A, NL, 7, EOT, NL]]
    out = empg.step_ids_from_delimiters(torch.tensor(row), start=[S, A, NL], end=[EOT, NL])
    assert out.tolist() == [[-1, -1, -1, -1, -1, 0, 0, 0, 0, -1, -1, -1, -1, -1, 1, 1, 1]]


def test_rows_are_independent_and_empty_length():
    rows = [[H0, H1, 5, END, 0], [1, 2, 3, H0, H1]]
    assert ids(rows) == [[-1, -1, 0, 0, -1], [-1, -1, -1, -1, -1]]
    empty = empg.step_ids_from_delimiters(torch.zeros(2, 0, dtype=torch.long), start=HEADER, end=[END])
    assert empty.shape == (2, 0)


def test_bad_inputs_name_the_argument():
    t = torch.tensor([[H0, H1, 5, END]])
    with pytest.raises(ValueError, match="token_ids"):
        empg.step_ids_from_delimiters(t[0], start=HEADER, end=[END])
    with pytest.raises(ValueError, match="token_ids"):
        empg.step_ids_from_delimiters(t.double() + 0.5, start=HEADER, end=[END])
    with pytest.raises(ValueError, match="start"):
        empg.step_ids_from_delimiters(t, start=[], end=[END])
    with pytest.raises(ValueError, match="end"):
        empg.step_ids_from_delimiters(t, start=HEADER, end=[1.5])
    with pytest.raises(ValueError, match="start and end"):
        empg.step_ids_from_delimiters(t, start=HEADER, end=[H1])  # end is a suffix of start
    with pytest.raises(ValueError, match="start and end"):
        empg.step_ids_from_delimiters(t, start=[END], end=[5, END])
    with pytest.raises(ValueError, match="truncated"):
        empg.step_ids_from_delimiters(t, start=HEADER, end=[END], truncated="cut")
    with pytest.raises(ValueError, match="mask"):
        empg.step_ids_from_delimiters(t, start=HEADER, end=[END], mask=torch.ones(1, 3, dtype=torch.bool))


# --- vectorised vs plain-loop reference -----------------------------------------------------------


def _suffixes(a, b):
    short, long_ = sorted((a, b), key=len)
    return long_[len(long_) - len(short) :] == short


@st.composite
def delimited_batches(draw):
    b = draw(st.integers(1, 3))
    length = draw(st.integers(1, 24))
    # Small vocabulary so that delimiters occur often. Start and end may share tokens, even their
    # last one (ChatML's "assistant\n" and "<|im_end|>\n" share "\n"), but neither may be a suffix of
    # the other (rejected with a ValueError: one position would both open and close a step).
    start = draw(st.lists(st.sampled_from([1, 2, 3]), min_size=1, max_size=3))
    end = draw(st.lists(st.sampled_from([2, 3, 4, 5]), min_size=1, max_size=2).filter(lambda e: not _suffixes(start, e)))
    toks = draw(st.lists(st.lists(st.integers(0, 6), min_size=length, max_size=length), min_size=b, max_size=b))
    use_mask = draw(st.booleans())
    mask = draw(st.lists(st.lists(st.booleans(), min_size=length, max_size=length), min_size=b, max_size=b))
    return (
        torch.tensor(toks),
        start,
        end,
        torch.tensor(mask) if use_mask else None,
        draw(st.booleans()),
        draw(st.sampled_from(["keep", "drop"])),
    )


@settings(max_examples=300, deadline=None)
@given(delimited_batches())
def test_vectorised_matches_reference(batch):
    toks, start, end, mask, first_open, truncated = batch
    kw = dict(start=start, end=end, mask=mask, first_step_open=first_open, truncated=truncated)
    fast = empg.step_ids_from_delimiters(toks, **kw)
    slow = reference.step_ids_from_delimiters_ref(toks, **kw)
    assert fast.tolist() == slow.tolist()


def test_vectorised_matches_reference_on_a_long_dialogue():
    # A realistic row: 12 turns, observations of 5–20 tokens, actions of 3–10, padding at the end.
    gen = torch.Generator().manual_seed(0)
    rows, masks = [], []
    for r in range(4):
        row = list(torch.randint(20, 100, (15,), generator=gen))  # prompt
        for _ in range(12):
            row += HEADER + list(torch.randint(20, 100, (int(torch.randint(3, 11, (1,), generator=gen)),), generator=gen))
            row += [END] + list(torch.randint(20, 100, (int(torch.randint(5, 21, (1,), generator=gen)),), generator=gen))
        rows.append([int(x) for x in row])
    length = max(map(len, rows)) + 3
    for row in rows:
        masks.append([1] * len(row) + [0] * (length - len(row)))
        row += [0] * (length - len(row))
    toks, mask = torch.tensor(rows), torch.tensor(masks).bool()
    fast = empg.step_ids_from_delimiters(toks, start=HEADER, end=[END], mask=mask)
    slow = reference.step_ids_from_delimiters_ref(toks, start=HEADER, end=[END], mask=mask)
    assert torch.equal(fast, slow)
    assert (fast.max(dim=1).values == 11).all()  # 12 steps per row: ids 0..11


def test_index_steps_sparse_large_ids_match_the_dense_path():
    """Step ids far larger than the batch take the sort-based branch of index_steps; it must give the
    same steps as renumbering them densely (ids 0 and 10**7 are steps 0 and 1 of their row)."""
    from empg._steps import index_steps

    sparse = torch.tensor([[0, 0, -1, 10**7, 10**7], [-1, 5, 5, 5, -1]])
    dense = torch.tensor([[0, 0, -1, 1, 1], [-1, 0, 0, 0, -1]])
    a, b = index_steps(sparse), index_steps(dense)
    assert torch.equal(a.token_step, b.token_step)
    assert torch.equal(a.row, b.row) and torch.equal(a.token_count, b.token_count)
    assert torch.equal(a.next_step, b.next_step)
    assert a.step.tolist() == [0, 10**7, 5]  # the original indices are kept
