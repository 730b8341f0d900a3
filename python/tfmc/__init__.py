"""tfmc: the Transformer Model Compiler from Python (ctypes over libtfmc.so, numpy arrays).

    import tfmc
    ctx = tfmc.load("examples/sort.tfm")
    sort = ctx.program()                  # the file's only program (or ctx.program("name"))
    sort.eval([3, 1, 4, 2])               # [1, 2, 3, 4]: the reference interpreter
    sort.run([3, 1, 4, 2])                # the compiled transformer (backend="llvm": the JIT)
    sort.verify().equal                   # True

    llama = tfmc.load("examples/models/llama.tfm").program()
    llama.logits([5, 6, 7])               # numpy [3][vocab]
    llama.generate([5, 6, 7], 4)          # greedy ids
    s = llama.session(); s.prefill([5, 6]); s.decode(7)
    llama.weights()                       # {name: numpy array}, RASP residual labels in .labels

Errors (a malformed file, a bad token, an unavailable backend) raise tfmc.TfmcError, which
carries file, line, col and message. docs/python.md has the rest."""
import ctypes
import ctypes.util
import json
import os
import struct
import tempfile

import numpy as np

__all__ = ["TfmcError", "Context", "Program", "Session", "VerifyResult", "load", "loads", "backend_available",
           "library_path"]


class TfmcError(Exception):
    """A diagnostic of the library: `file:line:col: message` (line and col 0 when it has no place)."""

    def __init__(self, message, file=None, line=0, col=0, hint=None):
        self.message, self.file, self.line, self.col, self.hint = message, file, line, col, hint
        where = "%s:%d:%d: " % (file, line, col) if file and line else ("%s: " % file if file else "")
        super().__init__(where + message + ("\n  hint: " + hint if hint else ""))


# ---------------------------------------------------------------------------- the library

def _candidates():
    env = os.environ.get("TFMC_LIBRARY")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    paths = []
    try:
        from . import _paths  # written by meson at install time: the installed libdir
        paths.append(os.path.join(_paths.LIBDIR, "libtfmc.so"))
    except ImportError:
        pass
    # the source tree's default build folder (python/tfmc -> build/)
    paths.append(os.path.join(here, "..", "..", "build", "libtfmc.so"))
    found = ctypes.util.find_library("tfmc")
    if found:
        paths.append(found)
    return paths


def _open():
    tried = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
    raise ImportError("tfmc: cannot load libtfmc.so; set TFMC_LIBRARY to its path (tried: %s)" % "; ".join(tried))


_lib, _lib_path = _open()


def library_path():
    """The libtfmc.so this module loaded."""
    return _lib_path


class _Value(ctypes.Structure):
    class _U(ctypes.Union):
        _fields_ = [("b", ctypes.c_bool), ("i", ctypes.c_int64), ("f", ctypes.c_double), ("s", ctypes.c_char_p)]
    _fields_ = [("kind", ctypes.c_int), ("u", _U)]


class _Diagnostic(ctypes.Structure):
    _fields_ = [("file", ctypes.c_char_p), ("line", ctypes.c_int), ("column", ctypes.c_int),
                ("end_line", ctypes.c_int), ("end_column", ctypes.c_int), ("message", ctypes.c_char_p),
                ("hint", ctypes.c_char_p), ("warning", ctypes.c_bool)]


class _VerifyOptions(ctypes.Structure):
    _fields_ = [("max_len", ctypes.c_int), ("samples", ctypes.c_long), ("seed", ctypes.c_uint64)]


class _VerifyResult(ctypes.Structure):
    _fields_ = [("checked", ctypes.c_long), ("exhaustive", ctypes.c_bool), ("equal", ctypes.c_bool)]


def _fn(name, res, *args):
    f = getattr(_lib, name)
    f.restype, f.argtypes = res, list(args)
    return f


_P, _I, _Z, _S = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t, ctypes.c_char_p
_context_new = _fn("tfmc_context_new", _P, _P)
_context_free = _fn("tfmc_context_free", None, _P)
_load_file = _fn("tfmc_load_file", _I, _P, _S)
_load_string = _fn("tfmc_load_string", _I, _P, _S, _S, _Z)
_diag_count = _fn("tfmc_diagnostic_count", _Z, _P)
_diag = _fn("tfmc_diagnostic", ctypes.POINTER(_Diagnostic), _P, _Z)
_program_count = _fn("tfmc_program_count", _Z, _P)
_program_at = _fn("tfmc_program_at", _P, _P, _Z)
_program_name = _fn("tfmc_program_name", _S, _P)
_program_kind = _fn("tfmc_program_kind", _I, _P)
_program_max_len = _fn("tfmc_program_max_len", _I, _P)
_parse_tokens = _fn("tfmc_parse_tokens", _I, _P, _S, ctypes.POINTER(_Value), _Z, ctypes.POINTER(_Z), _S, _Z)
_eval = _fn("tfmc_eval", _I, _P, _P, ctypes.POINTER(_Value), _Z, ctypes.POINTER(_Value))
_run = _fn("tfmc_run", _I, _P, _P, ctypes.POINTER(_Value), _Z, ctypes.POINTER(_Value))
_compile = _fn("tfmc_compile", _I, _P, _P)
_verify = _fn("tfmc_verify", _I, _P, _P, ctypes.POINTER(_VerifyOptions), ctypes.POINTER(_VerifyResult), _P)
_set_backend = _fn("tfmc_set_backend", _I, _P, _S)
_backend_available = _fn("tfmc_backend_available", ctypes.c_bool, _S)
_write_safetensors = _fn("tfmc_write_safetensors", _I, _P, _P, _S)
_model_vocab = _fn("tfmc_model_vocab", _I, _P)
_session_new = _fn("tfmc_session_new_threads", _I, _P, _P, _I, ctypes.POINTER(_P))
_session_free = _fn("tfmc_session_free", None, _P)
_session_reset = _fn("tfmc_session_reset", None, _P)
_session_prefill = _fn("tfmc_session_prefill", _I, _P, ctypes.POINTER(_I), _Z, ctypes.POINTER(ctypes.c_float))
_session_prefill_last = _fn("tfmc_session_prefill_last", _I, _P, ctypes.POINTER(_I), _Z, ctypes.POINTER(ctypes.c_float))
_session_decode = _fn("tfmc_session_decode", _I, _P, _I, ctypes.POINTER(ctypes.c_float))
_format_value = _fn("tfmc_format_value", _I, _Value, _S, _Z)
_tok_load = _fn("tfmc_tokenizer_load", _I, _P, _S, ctypes.POINTER(_P))
_tok_load_string = _fn("tfmc_tokenizer_load_string", _I, _P, _S, _S, _Z, ctypes.POINTER(_P))
_tok_free = _fn("tfmc_tokenizer_free", None, _P)
_tok_vocab = _fn("tfmc_tokenizer_vocab", _I, _P)
_tok_bytes = _fn("tfmc_tokenizer_bytes", _Z, _P)
_tok_find = _fn("tfmc_tokenizer_find", _I, _P, _S)
_tok_piece = _fn("tfmc_tokenizer_piece", _P, _P, _I, ctypes.POINTER(_Z))
_tok_special = _fn("tfmc_tokenizer_is_special", ctypes.c_bool, _P, _I)
_tok_max_ids = _fn("tfmc_tokenizer_max_ids", _Z, _P, _Z)
_tok_encode = _fn("tfmc_tokenizer_encode", _I, _P, _S, _Z, ctypes.c_uint, ctypes.POINTER(_I), _Z, ctypes.POINTER(_Z))
_tok_decode = _fn("tfmc_tokenizer_decode", _I, _P, ctypes.POINTER(_I), _Z, ctypes.c_uint, _P, _Z, ctypes.POINTER(_Z))


class _TokenStream(ctypes.Structure):
    _fields_ = [("tokenizer", _P), ("flags", ctypes.c_uint), ("pending", ctypes.c_ubyte * 4), ("npending", _I),
                ("strip", _I)]


_stream_init = _fn("tfmc_tokenizer_stream_init", None, ctypes.POINTER(_TokenStream), _P, ctypes.c_uint)
_stream_push = _fn("tfmc_tokenizer_stream_push", _I, ctypes.POINTER(_TokenStream), _I, _P, ctypes.POINTER(_Z))
_stream_flush = _fn("tfmc_tokenizer_stream_flush", None, ctypes.POINTER(_TokenStream), _P, ctypes.POINTER(_Z))
_stream_bytes = _fn("tfmc_tokenizer_stream_bytes", _Z, _P)
_model_tokenizer = _fn("tfmc_model_tokenizer", _S, _P)
_model_eos = _fn("tfmc_model_eos", _Z, _P, ctypes.POINTER(ctypes.POINTER(_I)))


class _Sampler(ctypes.Structure):
    _fields_ = [("temperature", ctypes.c_float), ("top_k", _I), ("top_p", ctypes.c_float)]


_sampler_seed = _fn("tfmc_sampler_seed", ctypes.c_uint64, ctypes.c_uint64)
_sample = _fn("tfmc_sample", _I, ctypes.POINTER(ctypes.c_float), _Z, ctypes.POINTER(_Sampler),
              ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(_I))
_ADD_SPECIAL, _PLAIN, _SKIP_SPECIAL = 1, 2, 4
_open_memstream = None
_fopen = _fn("fopen", _P, _S, _S) if hasattr(_lib, "fopen") else None

_UNDEF, _BOOL, _INT, _FLOAT, _STR = range(5)


def backend_available(name):
    """Whether this build has the backend: "interp" always, "llvm" when built with LLVM 19."""
    return bool(_backend_available(name.encode()))


def _py(v):
    if v.kind == _UNDEF:
        return None
    if v.kind == _BOOL:
        return bool(v.u.b)
    if v.kind == _INT:
        return int(v.u.i)
    if v.kind == _FLOAT:
        return float(v.u.f)
    return v.u.s.decode()


class Context:
    """Everything loaded from files or strings; programs live as long as it does."""

    def __init__(self):
        self._ctx = _context_new(None)
        if not self._ctx:
            raise MemoryError("tfmc: out of memory")
        self._seen = 0

    def __del__(self):
        if getattr(self, "_ctx", None):
            _context_free(self._ctx)
            self._ctx = None

    def _raise(self, fallback="tfmc call failed"):
        """The first error reported since the last check, as a TfmcError."""
        n = _diag_count(self._ctx)
        errors = []
        for i in range(self._seen, n):
            d = _diag(self._ctx, i).contents
            if not d.warning:
                errors.append(d)
        self._seen = n
        if not errors:
            raise TfmcError(fallback)
        d = errors[0]
        raise TfmcError(d.message.decode(), d.file.decode() if d.file else None, d.line, d.column,
                        d.hint.decode() if d.hint else None)

    def _check(self, status, fallback="tfmc call failed"):
        if status != 0:
            self._raise(fallback)
        self._seen = _diag_count(self._ctx)

    def load_file(self, path):
        self._check(_load_file(self._ctx, os.fspath(path).encode()))
        return self

    def load_string(self, text, name="<string>.tfm"):
        data = text.encode()
        self._check(_load_string(self._ctx, name.encode(), data, len(data)))
        return self

    def programs(self):
        return [Program(self, _program_at(self._ctx, i)) for i in range(_program_count(self._ctx))]

    def program(self, name=None):
        ps = self.programs()
        if name is None:
            if len(ps) != 1:
                raise TfmcError("the context holds %d programs: name one (%s)" % (len(ps), ", ".join(p.name for p in ps)))
            return ps[0]
        for p in ps:
            if p.name == name:
                return p
        raise TfmcError("no program `%s` (%s)" % (name, ", ".join(p.name for p in ps)))

    def set_backend(self, name):
        """"interp" or "llvm": what runs compiled programs from now on (run, verify, sessions)."""
        self._check(_set_backend(self._ctx, name.encode()))


def load(path):
    """A context holding the file's programs."""
    return Context().load_file(path)


def loads(text, name="<string>.tfm"):
    """A context holding the programs of a string (diagnostics name it `name`)."""
    return Context().load_string(text, name)


class VerifyResult:
    def __init__(self, checked, exhaustive, equal, report):
        self.checked, self.exhaustive, self.equal, self.report = checked, exhaustive, equal, report

    def __repr__(self):
        return "VerifyResult(checked=%d, exhaustive=%s, equal=%s)" % (self.checked, self.exhaustive, self.equal)


class Program:
    """A RASP program or a declared model of a context."""

    def __init__(self, ctx, handle):
        self.ctx, self._p = ctx, handle
        self.name = _program_name(handle).decode()
        self.kind = "rasp" if _program_kind(handle) == 0 else "model"
        self.max_len = _program_max_len(handle)

    def __repr__(self):
        return "Program(%r, kind=%r, max_len=%d)" % (self.name, self.kind, self.max_len)

    def compile(self):
        self.ctx._check(_compile(self.ctx.ctx_handle() if False else self.ctx._ctx, self._p))
        return self

    # RASP ---------------------------------------------------------------------------------

    def _tokens(self, tokens):
        line = " ".join(str(t).lower() if isinstance(t, bool) else str(t) for t in tokens).encode()
        cap = max(len(tokens), 1)
        buf, n, err = (_Value * cap)(), _Z(0), ctypes.create_string_buffer(512)
        if _parse_tokens(self._p, line, buf, cap, ctypes.byref(n), err, 512) != 0:
            raise TfmcError(err.value.decode())
        return buf, n.value

    def eval(self, tokens):
        """The reference interpreter's output, a Python value per position (None: undefined)."""
        buf, n = self._tokens(tokens)
        out = (_Value * max(n, 1))()
        self.ctx._check(_eval(self.ctx._ctx, self._p, buf, n, out))
        return [_py(out[i]) for i in range(n)]

    def run(self, tokens, backend=None):
        """The compiled transformer's output (backend: "interp", "llvm", or the context's)."""
        if backend:
            self.ctx.set_backend(backend)
        buf, n = self._tokens(tokens)
        out = (_Value * max(n, 1))()
        self.ctx._check(_run(self.ctx._ctx, self._p, buf, n, out))
        return [_py(out[i]) for i in range(n)]

    def verify(self, max_len=0, samples=0, seed=0, backend=None):
        """tfmc verify: the transformer against the interpreter; the report's text on .report."""
        if backend:
            self.ctx.set_backend(backend)
        o, r = _VerifyOptions(max_len, samples, seed), _VerifyResult()
        with tempfile.TemporaryFile(mode="w+b") as f:
            fp = _fdopen(os.dup(f.fileno()), b"w+")
            status = _verify(self.ctx._ctx, self._p, ctypes.byref(o), ctypes.byref(r), fp)
            _fclose(fp)
            f.seek(0)
            report = f.read().decode(errors="replace")
        self.ctx._check(status)
        return VerifyResult(r.checked, r.exhaustive, r.equal, report)

    # models -------------------------------------------------------------------------------

    @property
    def vocab(self):
        self.compile()
        return _model_vocab(self._p)

    def session(self, threads=1, backend=None):
        if backend:
            self.ctx.set_backend(backend)
        return Session(self, threads)

    def logits(self, ids, backend=None):
        """numpy [len(ids)][vocab]: every position's logits from one prefill."""
        s = self.session(backend=backend)
        return s.prefill(ids, every=True)

    def generate(self, ids, count, backend=None, temperature=0.0, top_k=0, top_p=1.0, seed=0, eos=None):
        """count ids after the prompt ids (the prefill gives the first): greedy, or sampled as
        `tfmc run` samples (docs/models.md); stops after an id of eos (default: the model's `eos`)."""
        s = self.session(backend=backend)
        logits = s.prefill(ids)
        sampler = _Sampler(temperature, top_k, top_p)
        state = ctypes.c_uint64(_sampler_seed(seed))
        work = (_I * s.vocab)()
        stop = set(self.eos() if eos is None else eos)
        out = []
        for k in range(count):
            if temperature == 0:
                out.append(int(np.argmax(logits)))
            else:
                lg = np.ascontiguousarray(logits, dtype=np.float32)
                i = _sample(lg.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), len(lg), ctypes.byref(sampler),
                            ctypes.byref(state), work)
                if i < 0:
                    raise TfmcError("bad sampling options: temperature %r, top_k %r, top_p %r" % (temperature, top_k, top_p))
                out.append(i)
            if out[-1] in stop:
                break
            if k + 1 < count:
                logits = s.decode(out[-1])
        return out

    def tokenizer(self):
        """The model's `tokenizer` statement's Tokenizer, or None."""
        path = _model_tokenizer(self._p)
        return Tokenizer(path.decode()) if path else None

    def eos(self):
        """The model's `eos` ids."""
        ids = ctypes.POINTER(_I)()
        n = _model_eos(self._p, ctypes.byref(ids))
        return [ids[i] for i in range(n)]

    def generate_text(self, prompt, count, tokenizer=None, **sampling):
        """The text generated after prompt (encoded with the post-processor's tokens), through the
        model's tokenizer or the one given; stops at an eos id."""
        tok = tokenizer or self.tokenizer()
        if tok is None:
            raise TfmcError("this model has no tokenizer: give one, or add `tokenizer \"tokenizer.json\";`")
        ids = self.generate(tok.encode(prompt, add_special=True), count, **sampling)
        stop = set(sampling.get("eos") or self.eos())
        if ids and ids[-1] in stop:
            ids = ids[:-1]
        return tok.decode(ids, skip_special=True)

    # weights ------------------------------------------------------------------------------

    def weights(self):
        """{name: numpy float32 array} as --emit=weights exports them; .labels on the dict: a RASP
        program's residual dimension names (the export's metadata)."""
        with tempfile.TemporaryDirectory(prefix="tfmc_py.") as d:
            path = os.path.join(d, "w.safetensors")
            self.ctx._check(_write_safetensors(self.ctx._ctx, self._p, path.encode()))
            return read_safetensors(path)


class _Weights(dict):
    """A dict of arrays with the file's metadata (.metadata) and residual labels (.labels)."""
    metadata = {}
    labels = []


def read_safetensors(path):
    """A safetensors file as {name: numpy array} (F32, F16, BF16, I32, I64, U8, I8)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = _Weights()
    kinds = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "I64": np.int64, "U8": np.uint8, "I8": np.int8}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        if t["dtype"] == "BF16":
            bits = np.frombuffer(data[a:b], dtype=np.uint16).astype(np.uint32) << 16
            arr = bits.view(np.float32)
        else:
            arr = np.frombuffer(data[a:b], dtype=kinds[t["dtype"]])
        out[name] = arr.reshape(t["shape"]).copy()
    out.metadata = header.get("__metadata__", {})
    labels = out.metadata.get("residual") or out.metadata.get("residual_labels")
    if isinstance(labels, str):
        try:
            labels = json.loads(labels)
        except ValueError:
            labels = labels.split(",")
    out.labels = labels or []
    return out


class Session:
    """A declared model's KV-cache session: prefill then decode."""

    def __init__(self, program, threads=1):
        self.program = program
        h = _P()
        program.ctx._check(_session_new(program.ctx._ctx, program._p, threads, ctypes.byref(h)))
        self._s = h
        self.vocab = _model_vocab(program._p)

    def __del__(self):
        if getattr(self, "_s", None):
            _session_free(self._s)
            self._s = None

    def reset(self):
        _session_reset(self._s)

    def prefill(self, ids, every=False):
        """Feed ids; the last position's logits (numpy [vocab]), or every position's with every."""
        n = len(ids)
        arr = (_I * max(n, 1))(*[int(i) for i in ids])
        out = np.zeros((n if every else 1, self.vocab), dtype=np.float32)
        f = _session_prefill if every else _session_prefill_last
        self.program.ctx._check(f(self._s, arr, n, out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))))
        return out if every else out[0]

    def decode(self, token):
        """Feed one id; its logits (numpy [vocab])."""
        out = np.zeros(self.vocab, dtype=np.float32)
        self.program.ctx._check(_session_decode(self._s, int(token), out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))))
        return out


class Tokenizer:
    """A Hugging Face tokenizer.json (BPE: GPT-2, Llama, Mistral, Qwen, Gemma, ...), run by tfmc's C code."""

    def __init__(self, path=None, json_text=None, name="<string>"):
        self._ctx = Context()
        h = _P()
        if json_text is not None:
            data = json_text.encode() if isinstance(json_text, str) else bytes(json_text)
            self._ctx._check(_tok_load_string(self._ctx._ctx, name.encode(), data, len(data), ctypes.byref(h)))
        else:
            self._ctx._check(_tok_load(self._ctx._ctx, os.fspath(path).encode(), ctypes.byref(h)))
        self._t = h
        self.vocab = _tok_vocab(h)
        self.bytes = _tok_bytes(h)  # the memory it holds

    def __del__(self):
        if getattr(self, "_t", None):
            _tok_free(self._t)
            self._t = None

    def encode(self, text, add_special=False, plain=False):
        """The ids of text (a str); add_special adds the post-processor's tokens (Llama's <s>); plain
        reads special tokens written in the text as text."""
        data = text.encode("utf-8")
        cap = _tok_max_ids(self._t, len(data))
        out = (_I * max(cap, 1))()
        n = _Z()
        flags = (_ADD_SPECIAL if add_special else 0) | (_PLAIN if plain else 0)
        st = _tok_encode(self._t, data, len(data), flags, out, cap, ctypes.byref(n))
        if st == 5:
            raise MemoryError("tfmc: out of memory")
        if st != 0:
            raise TfmcError("the text is not valid UTF-8 at byte %d" % (n.value + 1))
        return list(out[:n.value])

    def decode(self, ids, skip_special=False):
        """The text of ids; bytes that do not form UTF-8 become U+FFFD."""
        ids = [int(i) for i in ids]
        arr = (_I * max(len(ids), 1))(*ids)
        flags = _SKIP_SPECIAL if skip_special else 0
        n = _Z()
        st = _tok_decode(self._t, arr, len(ids), flags, None, 0, ctypes.byref(n))
        if st == 0:
            buf = ctypes.create_string_buffer(n.value + 1)
            st = _tok_decode(self._t, arr, len(ids), flags, buf, n.value + 1, ctypes.byref(n))
        if st != 0:
            bad = [i for i in ids if not 0 <= i < self.vocab]
            raise TfmcError("id %s is outside the vocabulary (0..%d)" % (bad[0] if bad else "?", self.vocab - 1))
        return buf.raw[:n.value].decode("utf-8")

    def stream(self, skip_special=False):
        """A streaming decoder: push(id) gives the text completed by that id, flush() the rest."""
        return TokenStream(self, _SKIP_SPECIAL if skip_special else 0)

    def find(self, token):
        """The id of a token as the file writes it ("<|endoftext|>", "Ġthe"), or None."""
        i = _tok_find(self._t, token.encode())
        return None if i < 0 else i

    def piece(self, i):
        """The bytes token i decodes to on its own."""
        n = _Z()
        p = _tok_piece(self._t, int(i), ctypes.byref(n))
        if not p:
            raise TfmcError("id %d is outside the vocabulary (0..%d)" % (i, self.vocab - 1))
        return ctypes.string_at(p, n.value)

    def is_special(self, i):
        return bool(_tok_special(self._t, int(i)))


class TokenStream:
    def __init__(self, tokenizer, flags):
        self.tokenizer = tokenizer
        self._s = _TokenStream()
        _stream_init(ctypes.byref(self._s), tokenizer._t, flags)
        self._buf = ctypes.create_string_buffer(_stream_bytes(tokenizer._t))

    def push(self, i):
        n = _Z()
        if _stream_push(ctypes.byref(self._s), int(i), self._buf, ctypes.byref(n)) != 0:
            raise TfmcError("id %d is outside the vocabulary (0..%d)" % (i, self.tokenizer.vocab - 1))
        return self._buf.raw[:n.value].decode("utf-8")

    def flush(self):
        n = _Z()
        _stream_flush(ctypes.byref(self._s), self._buf, ctypes.byref(n))
        return self._buf.raw[:n.value].decode("utf-8")


def tokenizer(path):
    """Load a tokenizer.json."""
    return Tokenizer(path)


_libc = ctypes.CDLL(None)
_fdopen = _libc.fdopen
_fdopen.restype, _fdopen.argtypes = ctypes.c_void_p, [ctypes.c_int, ctypes.c_char_p]
_fclose = _libc.fclose
_fclose.restype, _fclose.argtypes = ctypes.c_int, [ctypes.c_void_p]
