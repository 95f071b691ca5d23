"""The read planner: coverage, limits, gaps, and request counts."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bifrost.planning import Item, coalesce


def test_contiguous_registers_split_at_the_limit():
    items = [Item("hr", i, i + 1) for i in range(1000)]
    spans = coalesce(items, max_span=125)
    assert [(s.start, s.count) for s in spans] == [(i, 125) for i in range(0, 1000, 125)]


def test_small_gaps_merge_and_large_gaps_split():
    items = [Item("hr", 0, 2), Item("hr", 10, 12), Item("hr", 100, 102)]
    spans = coalesce(items, max_span=125, max_gap=8)
    assert [(s.start, s.count, s.members) for s in spans] == [(0, 12, (0, 1)), (100, 2, (2,))]


def test_groups_never_mix():
    items = [Item((1, "hr"), 0, 1), Item((2, "hr"), 1, 2), Item((1, "ir"), 2, 3)]
    spans = coalesce(items, max_span=125, max_gap=100)
    assert len(spans) == 3
    assert {s.key for s in spans} == {(1, "hr"), (2, "hr"), (1, "ir")}


def test_unsorted_and_duplicate_items():
    items = [Item("hr", 50, 52), Item("hr", 0, 2), Item("hr", 50, 52), Item("hr", 1, 3)]
    spans = coalesce(items, max_span=125)
    assert [(s.start, s.count, sorted(s.members)) for s in spans] == [
        (0, 3, [1, 3]),
        (50, 2, [0, 2]),
    ]


def test_an_item_larger_than_a_request_is_refused():
    with pytest.raises(ValueError, match="item 0 spans 126"):
        coalesce([Item("hr", 0, 126)], max_span=125)


@given(
    st.lists(
        st.tuples(st.sampled_from("ab"), st.integers(0, 3000), st.integers(1, 4)),
        min_size=1,
        max_size=300,
    ),
    st.integers(4, 125),
    st.integers(0, 40),
)
def test_every_item_is_served_by_exactly_one_span_within_limits(raw, max_span, max_gap):
    items = [Item(key, start, start + size) for key, start, size in raw]
    spans = coalesce(items, max_span=max_span, max_gap=max_gap)
    served = sorted(m for s in spans for m in s.members)
    assert served == list(range(len(items)))
    for span in spans:
        assert 1 <= span.count <= max_span
        for member in span.members:
            item = items[member]
            assert item.key == span.key
            assert span.start <= item.start
            assert item.end <= span.end
        # A span never reads over a hole wider than max_gap.
        covered = sorted((items[m].start, items[m].end) for m in span.members)
        reach = covered[0][1]
        for start, end in covered[1:]:
            assert start - reach <= max_gap
            reach = max(reach, end)
    # Spans of one key never overlap and each merge decision was forced by a limit.
    by_key: dict[str, list[tuple[int, int]]] = {}
    for span in spans:
        by_key.setdefault(span.key, []).append((span.start, span.end))
    for ranges in by_key.values():
        ranges.sort()
        for (_, end), (start, next_end) in itertools.pairwise(ranges):
            assert start >= end or next_end - ranges[0][0] > max_span


def test_array_coalescing_merges_as_coalesce_does():
    import random

    import numpy as np

    from bifrost.planning import coalesce_arrays

    rng = random.Random(7)
    for _ in range(200):
        items = []
        for _ in range(rng.randint(1, 60)):
            start = rng.randint(0, 400)
            items.append(Item(rng.choice(["a", "b", "c"]), start, start + rng.randint(1, 4)))
        max_span, max_gap = rng.randint(4, 40), rng.randint(0, 20)
        codes = {key: i for i, key in enumerate(dict.fromkeys(item.key for item in items))}
        fast = coalesce_arrays(
            np.array([codes[item.key] for item in items], dtype=np.intp),
            np.array([item.start for item in items], dtype=np.intp),
            np.array([item.end for item in items], dtype=np.intp),
            max_span,
            max_gap,
        )
        slow = coalesce(items, max_span, max_gap)
        names = list(codes)
        assert [(names[k], s, c, tuple(m.tolist())) for k, s, c, m in fast] == [
            (span.key, span.start, span.count, span.members) for span in slow
        ]


def test_array_coalescing_of_long_lists_merges_as_coalesce_does_on_both_paths():
    """Long dense lists, cut by the span limit, with and without overlapping tags."""
    import random

    import numpy as np

    from bifrost.planning import _merge_at_once, coalesce_arrays

    rng = random.Random(11)
    merged_at_once = 0
    for case in range(120):
        overlapping = case % 2 == 1
        max_span, max_gap = rng.randint(8, 125), rng.randint(0, 6)
        items = []
        for i in range(rng.randint(200, 600)):
            start = rng.randint(0, 300) if overlapping else 2 * i + rng.randint(0, 1)
            size = rng.randint(1, 8) if overlapping else rng.randint(1, 2)
            items.append(Item(rng.choice(["a", "b"]), start, start + size))
        codes = {key: i for i, key in enumerate(dict.fromkeys(item.key for item in items))}
        keys = np.array([codes[item.key] for item in items], dtype=np.intp)
        starts = np.array([item.start for item in items], dtype=np.intp)
        ends = np.array([item.end for item in items], dtype=np.intp)
        fast = coalesce_arrays(keys, starts, ends, max_span, max_gap)
        slow = coalesce(items, max_span, max_gap)
        names = list(codes)
        assert [(names[k], s, c, tuple(m.tolist())) for k, s, c, m in fast] == [
            (span.key, span.start, span.count, span.members) for span in slow
        ]
        order = np.lexsort((ends, starts, keys))
        bounds = _merge_at_once(keys[order], starts[order], ends[order], max_span, max_gap)
        merged_at_once += bounds is not None
    assert merged_at_once == 120


def test_array_coalescing_after_an_item_longer_than_a_span_merges_item_by_item():
    import numpy as np

    from bifrost.planning import _merge_at_once, coalesce_arrays

    # [0, 20) is longer than max_span 10: a span of its own; [1, 2) after it starts
    # another span ending at 2, not at the running end of 20.
    keys = np.array([0, 0, 0], dtype=np.intp)
    starts = np.array([0, 1, 30], dtype=np.intp)
    ends = np.array([20, 2, 31], dtype=np.intp)
    assert _merge_at_once(keys, starts, ends, 10, 0) is None
    merged = coalesce_arrays(keys, starts, ends, 10, 0)
    assert [(k, s, c, m.tolist()) for k, s, c, m in merged] == [
        (0, 0, 20, [0]),
        (0, 1, 1, [1]),
        (0, 30, 1, [2]),
    ]


def test_a_modbus_plan_of_mixed_tags_reads_each_tag_where_its_data_lands():
    from bifrost.model import Tag
    from bifrost.protocols.modbus.options import ModbusOptions
    from bifrost.protocols.modbus.plan import compile_read

    addresses = ["hr:10:float32", "co:3", "hr:0", "ir:5:int32:CDAB", "hr:10@2", "co:1", "hr:300"]
    plan = compile_read([Tag(a, a) for a in addresses], ModbusOptions())
    assert [(s.key, s.start, s.count, s.members) for s in plan.spans] == [
        ((1, "hr"), 0, 12, (2, 0)),
        ((1, "hr"), 300, 1, (6,)),
        ((1, "ir"), 5, 2, (3,)),
        ((2, "hr"), 10, 1, (4,)),
        ((1, "co"), 1, 3, (5, 1)),
    ]
    for member, address in enumerate(plan.addresses):
        span = plan.spans[int(plan.span_of_tag[member])]
        assert span.start <= address.offset < address.end <= span.end
    positions = sorted(int(p) for g in plan.groups for p in g.positions)
    assert positions == list(range(len(addresses)))
