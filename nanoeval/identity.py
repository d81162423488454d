"""What decides a result, hashed: the model's files, the code that turns examples into records, the environment.

The run fingerprint (resume, move-aside, merge) is built from these, so a checkpoint retrained into the same folder,
an edited prompt, or a new torch never resumes an old run's journals:
  * model_identity: sha256 of the model's weight, tokenizer, config and chat-template files (or of the named GGUF
    file), or the resolved commit of a hub snapshot. Digests are remembered in the NanoEval cache dir, keyed by
    (path, size, mtime, inode), so multi-GB files are read once.
  * code_hash: the normalized syntax tree (no docstrings, comments, annotations or line numbers) of every function,
    class and plain-data constant of this package that a benchmark's `load` and `score` and the runner's case loop
    reach, plus the engine's tokenization, generation and decoding. Functions are keyed by name, not file, so moving
    code between modules changes nothing; metrics and aggregation (`summarize`) are not reached, so editing them
    rebuilds artifacts from the same journals.
  * environment: Python and the versions of torch, transformers, tokenizers, datasets, jinja2, gguf and Pillow,
    dtype and device type.
The numeric kernels of the engine (batching, packing, attention masks) are not hashed: they are held to the naive
path by equivalence tests, and the library versions cover the libraries underneath.
"""
from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib
import inspect
import json
import os
import platform
import re
import sys
import textwrap
from importlib import metadata
from pathlib import Path

PACKAGE = __name__.split(".")[0]
# The libraries whose version can change a token, a pixel or a number (distribution names)
ENVIRONMENT_PACKAGES = ("torch", "transformers", "tokenizers", "datasets", "jinja2", "gguf", "Pillow")
# The files of a model folder (top level) that can change a result, and training leftovers that cannot.
_MODEL_FILE = re.compile(r"(?i)^[^.].*\.(safetensors|bin|pt|pth|gguf|msgpack|h5|json|model|txt|jinja|tiktoken|py)$")
# any one of these means the folder has a tokenizer (tokenizer_config.json alone: a tokenizer that needs no vocab)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "vocab.txt",
                   "spiece.model", "sentencepiece.bpe.model", "tokenizer.tiktoken")
_NOT_MODEL = re.compile(r"(?i)^(optimizer\.pt|scheduler\.pt|rng_state.*\.pth|training_args\.bin|trainer_state\.json|"
                        r"readme.*|license.*|requirements.*\.txt|.*tfevents.*)$")


def cache_root() -> Path:
    return Path(os.environ.get("NANOEVAL_CACHE") or Path.home() / ".cache" / "nanoeval")


# ------------------------------------------------------------------------------------------------- file digests
def file_digest(path: Path) -> str:
    """sha256 of a file, remembered under the cache dir by (path, size, mtime, inode): read once per version."""
    path = Path(path).resolve()
    st = path.stat()
    key = hashlib.sha256(f"{path}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}".encode()).hexdigest()
    memo = cache_root() / "digests" / key[:2] / key
    try:
        digest = memo.read_text().strip()
        if re.fullmatch(r"[0-9a-f]{64}", digest):
            return digest
    except OSError:
        pass
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    digest = h.hexdigest()
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(f".{key}.{os.getpid()}")
        tmp.write_text(digest)
        os.replace(tmp, memo)
    except OSError:
        pass  # a read-only cache costs a re-read next time, nothing else
    return digest


# ------------------------------------------------------------------------------------------------ model identity
def hub_commit(repo_id: str, revision: str | None) -> str | None:
    """The commit a hub id + revision resolves to: the revision itself if it is a commit hash; else the hub's
    answer (online) or the local cache's refs (offline). None if it cannot be resolved."""
    if revision and re.fullmatch(r"[0-9a-f]{40}", revision):
        return revision
    from huggingface_hub import constants

    if not constants.HF_HUB_OFFLINE:
        try:
            from huggingface_hub import HfApi

            return HfApi().model_info(repo_id, revision=revision).sha
        except Exception:  # no network or no access: fall back to what is cached
            pass
    ref = Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}" / "refs" / (revision or "main")
    try:
        commit = ref.read_text().strip()
    except OSError:
        return None
    return commit if re.fullmatch(r"[0-9a-f]{40}", commit) else None


def model_files(folder: Path) -> list[Path]:
    """The files of a model folder that can change a result: weights, tokenizer, configs, chat template, remote
    code; top level only (a training folder's checkpoint-*/ and runs/ stay out), optimizer state and logs left out."""
    return sorted(p for p in folder.iterdir() if p.is_file() and _MODEL_FILE.match(p.name)
                  and not _NOT_MODEL.match(p.name))


def model_identity(location: str, gguf_file: str | None, revision: str | None) -> dict:
    """{"kind": "files", "files": {relative path: sha256}} for a local folder (only the GGUF file when one is named),
    or {"kind": "hub", "repo": ..., "commit": ...}; "digest" sums it up. Raises FileNotFoundError / LookupError."""
    folder = Path(location)
    if folder.is_dir():
        paths = [folder / gguf_file] if gguf_file else model_files(folder)
        if gguf_file and not paths[0].is_file():
            raise FileNotFoundError(f"{paths[0]}: GGUF file not found")
        if not gguf_file and not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder}: the folder holds no config.json (expected a Hugging Face model "
                                    "folder, or a GGUF file named by model.gguf_file)")
        if not gguf_file and not any((folder / f).is_file() for f in TOKENIZER_FILES):
            # found now, in one line, rather than by transformers after the weights load
            raise FileNotFoundError(f"{folder}: the folder holds no tokenizer (none of {', '.join(TOKENIZER_FILES)}; "
                                    "save the tokenizer beside the weights: tokenizer.save_pretrained(folder))")
        ident = {"kind": "files", "files": {str(p.relative_to(folder)): file_digest(p) for p in paths}}
    else:
        commit = hub_commit(location, revision)
        if commit is None:
            from huggingface_hub import constants

            where = "in the local Hugging Face cache (offline: HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE \
                else "on the hub or in the local Hugging Face cache"
            raise LookupError(f"{location!r}: no such local folder, and no hub model of that name at revision "
                              f"{revision or 'main'!r} {where}")
        ident = {"kind": "hub", "repo": location, "commit": commit}
    ident["digest"] = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    return ident


def memory_identity(model, tokenizer) -> dict:
    """The identity of a model in memory (training.py): sha256 over every tensor of its state dict (name, dtype,
    shape, bytes) and its tokenizer (vocabulary and special tokens as serialized), {"kind": "memory", ...}. The
    weights, never where they came from: the same weights hash alike at any step, other weights never do."""
    import torch

    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.contiguous().cpu().reshape(-1).view(torch.uint8).numpy())  # the bytes in place, no copy
    backend = getattr(tokenizer, "backend_tokenizer", None)
    vocab = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    h.update(vocab.encode())
    h.update(json.dumps(tokenizer.special_tokens_map, sort_keys=True, default=str).encode())
    weights = h.hexdigest()
    ident = {"kind": "memory", "class": type(model).__name__, "weights": weights}
    ident["digest"] = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    return ident


def environment(dtype: str, device: str) -> dict:
    """Python and the versions of the libraries that turn examples into tokens and numbers (torch, transformers,
    tokenizers, datasets, jinja2 for chat templates, gguf for converted models, Pillow for images), dtype and
    device type: results from two environments never mix in one run (Python too: the code hash is built from its
    syntax trees). A library not installed is None."""
    def version(pkg):
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    if device == "auto":
        import torch  # only the device type needs it; `auto` means cuda if it is available

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return {"python": platform.python_version(), **{pkg: version(pkg) for pkg in ENVIRONMENT_PACKAGES},
            "dtype": dtype, "device_type": device.split(":")[0]}


# --------------------------------------------------------------------------------------------------- code hash
class _Normalize(ast.NodeTransformer):
    """Drop what cannot change behaviour: docstrings and annotations (comments and positions never reach the AST)."""

    def _body(self, node):
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
        return node

    def visit_FunctionDef(self, node):
        node.returns = None
        self.generic_visit(node)
        return self._body(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Module(self, node):  # a benchmark stated as data is hashed whole (_closed_over): not its docstring
        self.generic_visit(node)
        return self._body(node)

    def visit_ClassDef(self, node):
        self.generic_visit(node)
        return self._body(node)

    def visit_arg(self, node):
        node.annotation = None
        return node

    def visit_AnnAssign(self, node):
        node.annotation = ast.Constant(None)
        self.generic_visit(node)
        return node


def _tree(obj) -> ast.AST:
    return _Normalize().visit(ast.parse(textwrap.dedent(inspect.getsource(obj))))


def _ours(obj) -> bool:
    return (getattr(obj, "__module__", None) or "").split(".")[0] == PACKAGE


def _closed_over(value) -> list:
    """What a closure holds that decides records: our functions and classes; for an instance of one of our
    dataclasses (a benchmark stated as data: multiple_choice.py, generative.py), the whole module of each function
    it holds, in the dataclasses, dicts, lists and tuples it holds too (its lambdas, the helpers they call and the
    literals beside them)."""
    if inspect.isfunction(value) or inspect.isclass(value):
        return [inspect.unwrap(value)] if _ours(value) else []
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and _ours(type(value)):
        return list({f.__module__: sys.modules[f.__module__] for f in _held(value)}.values())
    return []


def _held(value) -> list:
    """Our functions inside a declaration (a dataclass of ours), however deep in dicts, lists and tuples."""
    if inspect.isfunction(value):
        return [value] if _ours(value) else []
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and _ours(type(value)):
        return [f for field in dataclasses.fields(value) for f in _held(getattr(value, field.name))]
    if isinstance(value, dict):
        return [f for v in value.values() for f in _held(v)]
    if isinstance(value, (list, tuple)):
        return [f for v in value for f in _held(v)]
    return []


def _constant(value) -> str | None:
    """A stable text for a module-level constant (None: not plain data, e.g. a function inside a dict)."""
    def plain(v):
        if isinstance(v, re.Pattern):
            return ["re.compile", v.pattern, int(v.flags)]
        if isinstance(v, (set, frozenset)):
            return sorted((plain(x) for x in v), key=repr)
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, (str, int, float, bool, type(None))):
            return v
        if isinstance(v, bytes):
            return v.hex()
        raise TypeError(type(v).__name__)

    try:
        return json.dumps(plain(value), sort_keys=True)
    except (TypeError, ValueError):
        return None


def code_hash(roots: list) -> tuple[str, list[str]]:
    """sha256 over the normalized source of `roots` and everything of this package they reach by name (functions,
    classes, constants; also what a function imports from this package inside itself); returns (hash, the names
    included)."""
    parts: dict[str, str] = {}
    queue = [inspect.unwrap(r) for r in roots]
    seen: set[int] = set()
    while queue:
        obj = queue.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        tree = _tree(obj)
        dump = ast.dump(tree)
        parts[f"{getattr(obj, '__qualname__', obj.__name__)} {hashlib.sha256(dump.encode()).hexdigest()[:8]}"] = dump
        scope = vars(obj) if inspect.ismodule(obj) else \
            getattr(obj, "__globals__", None) or vars(sys.modules[obj.__module__])
        for cell in getattr(obj, "__closure__", None) or ():
            queue += _closed_over(cell.cell_contents)
        for node in ast.walk(tree):
            name, target = None, None
            if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == PACKAGE:
                # imported inside a function (kept off import time: it imports torch or transformers)
                module = importlib.import_module(node.module)
                queue += [inspect.unwrap(t) for t in (getattr(module, a.name, None) for a in node.names)
                          if (inspect.isfunction(t) or inspect.isclass(t)) and _ours(t)]
                continue
            if isinstance(node, ast.Name) and node.id in scope:
                name, target = node.id, scope[node.id]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in scope:
                base = scope[node.value.id]  # module.attr, e.g. prompts.LETTERS
                if inspect.ismodule(base) and base.__name__.split(".")[0] == PACKAGE:
                    name, target = node.attr, getattr(base, node.attr, None)
            if target is None or inspect.ismodule(target):
                continue
            if callable(target):
                target = inspect.unwrap(target)
                if (inspect.isfunction(target) or inspect.isclass(target)) and _ours(target):
                    queue.append(target)
            elif (text := _constant(target)) is not None:  # plain data the code reads: a prompt, a table
                parts[f"const {name} {hashlib.sha256(text.encode()).hexdigest()[:8]}"] = text
    h = hashlib.sha256()
    for name in sorted(parts):
        h.update(f"{name}\0{parts[name]}\0".encode())
    return h.hexdigest()[:16], sorted(parts)
