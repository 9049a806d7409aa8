"""Meaning checks that need the whole rule list: left recursion.

Two checks, both raising `GrammarError(Msg.LEFT_RECURSION)`:

* llama.cpp's own ``llama_grammar_detect_left_recursion``, reproduced exactly so that every
  grammar llama.cpp refuses is refused here too. It only skips over rules that have an
  explicitly empty alternative (``x ::= "a" |``), not over every rule that can match
  nothing, so it misses some recursions.
* the recursions it misses but that would make the pushdown expansion grow without end
  (a rule reaching itself through rules that can match nothing, with something still to
  do afterwards). llama.cpp hangs on those; ``( [x]* )*``-style tail recursion stays legal.
"""

from __future__ import annotations

from ._ir import REF, GrammarIR
from ._syntax import Msg, error_at

__all__ = ["check_left_recursion", "nullable_rules"]


def nullable_rules(ir: GrammarIR) -> list[bool]:
    """For each rule: can it match the empty string?

    A worklist over "alternative waits for n rules" counters, linear in the grammar's size
    (a fixpoint of passes over all rules was quadratic: a chain of 4,000 rules took 9 s).
    """
    nullable = [False] * len(ir.rules)
    waiting: list[list[tuple[int, int]]] = [[] for _ in ir.rules]  # rule -> (rule, alt) using it
    missing: dict[tuple[int, int], int] = {}
    ready: list[int] = []
    for i, alts in enumerate(ir.rules):
        for j, alt in enumerate(alts):
            if any(kind != REF for kind, _ in alt):
                continue  # a terminal: this alternative never matches the empty string
            refs = {value for _, value in alt}
            if not refs:
                ready.append(i)
                continue
            missing[(i, j)] = len(refs)
            for ref in refs:
                waiting[ref].append((i, j))
    while ready:
        rule = ready.pop()
        if nullable[rule]:
            continue
        nullable[rule] = True
        for key in waiting[rule]:
            missing[key] -= 1
            if missing[key] == 0:
                ready.append(key[0])
    return nullable


def _left_edges(ir: GrammarIR, skippable: list[bool]) -> list[list[tuple[int, bool]]]:
    """Edges rule -> rule it may call first; the flag says something follows the call."""
    edges: list[list[tuple[int, bool]]] = [[] for _ in ir.rules]
    for i, alts in enumerate(ir.rules):
        for alt in alts:
            for j, (kind, value) in enumerate(alt):
                if kind != REF:
                    break
                edges[i].append((value, j + 1 < len(alt)))
                if not skippable[value]:
                    break
    return edges


def _components(n: int, edges: list[list[tuple[int, bool]]]) -> list[int]:
    """Strongly connected component id of every node (iterative Tarjan)."""
    index = [-1] * n
    low = [0] * n
    comp = [-1] * n
    on_stack = [False] * n
    stack: list[int] = []
    counter = n_comp = 0
    for start in range(n):
        if index[start] != -1:
            continue
        work = [(start, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack[node] = True
            if child < len(edges[node]):
                work.append((node, child + 1))
                succ = edges[node][child][0]
                if index[succ] == -1:
                    work.append((succ, 0))
                elif on_stack[succ]:
                    low[node] = min(low[node], index[succ])
                continue
            if low[node] == index[node]:
                while True:
                    top = stack.pop()
                    on_stack[top] = False
                    comp[top] = n_comp
                    if top == node:
                        break
                n_comp += 1
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return comp


def _first_cycle(ir: GrammarIR, edges: list[list[tuple[int, bool]]], growing_only: bool) -> int | None:
    """A rule on a cycle of `edges` (on a growing edge if `growing_only`), or None."""
    comp = _components(len(ir.rules), edges)
    for i, out in enumerate(edges):
        for succ, grows in out:
            if comp[succ] == comp[i] and (grows or not growing_only):
                return i
    return None


def check_left_recursion(ir: GrammarIR, text: str) -> None:
    """Raise a `GrammarError` naming the user rule whose definition is left recursive."""
    has_empty_alt = [any(not alt for alt in alts) for alts in ir.rules]
    culprit = _first_cycle(ir, _left_edges(ir, has_empty_alt), growing_only=False)
    if culprit is None:
        culprit = _first_cycle(ir, _left_edges(ir, nullable_rules(ir)), growing_only=True)
    if culprit is None:
        return
    owner = ir.owners[culprit]
    line, column = ir.positions.get(ir.symbols.get(owner, culprit), (1, 1))
    raise error_at(
        text,
        f"{Msg.LEFT_RECURSION} in rule '{owner}': it can reach itself again before matching any "
        "character (rewrite it with repetition, e.g. list ::= item (\",\" item)*)",
        line,
        column,
    )
