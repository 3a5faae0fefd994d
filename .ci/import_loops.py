#!/usr/bin/env python3
"""Checks that the modules of each crate import one way: no loop of `crate::`
references between files (docs/architecture.md, "Rules the structure keeps").

Usage: python3 .ci/import_loops.py otel-agent-runtime/src otel-agent-macros/src

A file's references are its `crate::a::b` paths outside comments and outside its
`#[cfg(test)]` module (tests may reach anywhere). A reference names the deepest
module file it matches; a module and its own submodules are one family (a parent
declares and re-exports its children), so references between them do not count.
Prints each loop found and exits 1 if there is one.
"""

import os
import re
import sys


def modules(src):
    """Module path ("metrics::record") -> code to scan, for every file in src."""
    found = {}
    for directory, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(directory, name)
            rel = os.path.relpath(path, src)[: -len(".rs")]
            if rel in ("lib", "main"):
                continue
            module = rel.removesuffix("/mod").replace("/", "::")
            with open(path, encoding="utf-8") as f:
                code = f.read()
            code = re.split(r"#\[cfg\(test\)\]\s*mod\s", code)[0]
            code = re.sub(r"//.*", "", code)
            found[module] = code
    return found


def related(a, b):
    return a == b or a.startswith(b + "::") or b.startswith(a + "::")


def edges(found):
    graph = {m: set() for m in found}
    for module, code in found.items():
        for path in re.findall(r"crate::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)", code):
            parts = path.split("::")
            target = None
            for i in range(len(parts), 0, -1):
                candidate = "::".join(parts[:i])
                if candidate in found:
                    target = candidate
                    break
            if target and not related(module, target):
                graph[module].add(target)
    return graph


def loops(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result


def main():
    passed = failed = 0
    for src in sys.argv[1:]:
        graph = edges(modules(src))
        found = loops(graph)
        if found:
            failed += 1
        else:
            passed += 1
        for component in found:
            print(f"{src}: these modules import each other in a loop:")
            for m in component:
                print(f"  {m} -> {', '.join(sorted(graph[m] & set(component)))}")
        if not found:
            print(f"{src}: {len(graph)} modules, imports go one way")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
