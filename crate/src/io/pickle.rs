//! A restricted unpickler: just enough of Python's pickle (protocol 2, plus the few protocol 3/4
//! opcodes that carry no code) to read a PyTorch state_dict. It never runs or imports anything:
//! a GLOBAL is looked up in a short allow-list (OrderedDict, torch's tensor-rebuild functions,
//! torch's storage classes) and anything else is refused by its module and name. Opcode meanings
//! follow CPython's `Lib/pickletools.py` documentation.
//!
//! Values are immutable and shared (`Rc`), so memo references cost nothing and no cycle can be
//! built; a work counter bounds the copying that mutation of a shared container causes.

use std::collections::HashMap;
use std::rc::Rc;

use super::byte_reader::ByteReader;
use super::tensor_view::DType;
use crate::{Error, Result};

/// The Python callables a state_dict pickle may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllowedGlobal {
    /// `collections.OrderedDict`: the state_dict itself and its `_metadata`.
    OrderedDict,
    /// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`.
    RebuildTensorV2,
    /// `torch._utils._rebuild_tensor(storage, offset, size, stride)` (torch < 1.0).
    RebuildTensor,
    /// `torch._utils._rebuild_parameter(data, requires_grad, hooks)`: a Parameter wrapping a tensor.
    RebuildParameter,
    /// `torch.FloatStorage` etc.: names the element type of a persistent storage.
    Storage(DType),
}

impl AllowedGlobal {
    fn lookup(module: &str, name: &str) -> Option<AllowedGlobal> {
        Some(match (module, name) {
            ("collections", "OrderedDict") => AllowedGlobal::OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2") => AllowedGlobal::RebuildTensorV2,
            ("torch._utils", "_rebuild_tensor") => AllowedGlobal::RebuildTensor,
            ("torch._utils", "_rebuild_parameter") => AllowedGlobal::RebuildParameter,
            ("torch", storage) => AllowedGlobal::Storage(match storage {
                "FloatStorage" => DType::F32,
                "HalfStorage" => DType::F16,
                "BFloat16Storage" => DType::BF16,
                "DoubleStorage" => DType::F64,
                "LongStorage" => DType::I64,
                "IntStorage" => DType::I32,
                "ShortStorage" => DType::I16,
                "CharStorage" => DType::I8,
                "ByteStorage" => DType::U8,
                "BoolStorage" => DType::Bool,
                _ => return None,
            }),
            _ => return None,
        })
    }
}

/// A storage named by a persistent id `('storage', type, key, location, numel[, view])`.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageRef {
    pub dtype: DType,
    /// The key under which its bytes are stored (zip entry `data/<key>`, or legacy storage key).
    pub key: String,
    /// Element count as declared in the pickle (checked against the bytes later).
    pub numel: u64,
    /// Legacy format only: this storage is a view `(root key, element offset, numel)`.
    pub view_of: Option<(String, u64, u64)>,
}

/// A tensor as `_rebuild_tensor_v2` describes it: a window into a storage.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    /// In elements, from the start of the storage.
    pub storage_offset: u64,
    pub size: Vec<u64>,
    pub stride: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Rc<Value>>),
    List(Vec<Rc<Value>>),
    /// Keys and values in insertion order (dict and OrderedDict alike).
    Dict(Vec<(Rc<Value>, Rc<Value>)>),
    Global(AllowedGlobal),
    Storage(StorageRef),
    Tensor(TensorRef),
}

/// Bound on element copies caused by mutating shared containers (see module doc).
const MAX_COPY_WORK: usize = 50_000_000;

/// Opcode names for error messages (from pickletools), for the ones we refuse.
fn opcode_name(op: u8) -> &'static str {
    match op {
        b'I' => "INT",
        b'L' => "LONG",
        b'F' => "FLOAT",
        b'S' => "STRING",
        b'V' => "UNICODE",
        b'i' => "INST",
        b'o' => "OBJ",
        0x81 => "NEWOBJ",
        0x92 => "NEWOBJ_EX",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        b'P' => "PERSID",
        b'g' => "GET",
        b'p' => "PUT",
        0x8b => "LONG4",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => "unknown",
    }
}

/// Containers nest at most this deep (a state_dict needs 4), so that dropping, comparing or
/// printing a value can never overflow the call stack.
const MAX_NESTING: u16 = 64;

/// A stack entry: a MARK, or a value with its nesting depth (0 for scalars).
enum Slot {
    Mark,
    Value(Rc<Value>, u16),
}

struct Unpickler<'a> {
    reader: ByteReader<'a, 'a>,
    stack: Vec<Slot>,
    memo: HashMap<u32, (Rc<Value>, u16)>,
    copy_work: usize,
}

/// Reads one pickle starting at `start` in `bytes`. Returns the value and the offset just past
/// its STOP opcode (the legacy PyTorch format stores several pickles back to back).
pub fn unpickle(what: &str, bytes: &[u8], start: usize) -> Result<(Rc<Value>, usize)> {
    let mut reader = ByteReader::new(what, bytes);
    reader.pos = start.min(bytes.len());
    let mut machine = Unpickler {
        reader,
        stack: Vec::new(),
        memo: HashMap::new(),
        copy_work: 0,
    };
    let value = machine.run()?;
    Ok((value, machine.reader.pos))
}

impl<'a> Unpickler<'a> {
    fn err(&self, detail: impl Into<String>) -> Error {
        self.reader.error(format!("pickle: {}", detail.into()))
    }

    fn push(&mut self, v: Value) {
        self.stack.push(Slot::Value(Rc::new(v), 0));
    }

    /// Pushes a container holding values nested `inner` deep.
    fn push_container(&mut self, v: Value, inner: u16) -> Result<()> {
        let depth = inner + 1;
        if depth > MAX_NESTING {
            return Err(self.err(format!("containers nested deeper than {MAX_NESTING}")));
        }
        self.stack.push(Slot::Value(Rc::new(v), depth));
        Ok(())
    }

    /// Records that the container on top now holds values nested `inner` deep.
    fn raise_top_depth(&mut self, inner: u16) -> Result<()> {
        if inner + 1 > MAX_NESTING {
            return Err(self.err(format!("containers nested deeper than {MAX_NESTING}")));
        }
        if let Some(Slot::Value(_, depth)) = self.stack.last_mut() {
            *depth = (*depth).max(inner + 1);
        }
        Ok(())
    }

    fn pop(&mut self) -> Result<Rc<Value>> {
        self.pop_slot().map(|(v, _)| v)
    }

    fn pop_slot(&mut self) -> Result<(Rc<Value>, u16)> {
        match self.stack.pop() {
            Some(Slot::Value(v, depth)) => Ok((v, depth)),
            Some(Slot::Mark) => Err(self.err("expected a value on the stack, found a MARK")),
            None => Err(self.err("stack underflow")),
        }
    }

    fn top_mut(&mut self) -> Result<&mut Rc<Value>> {
        match self.stack.last_mut() {
            Some(Slot::Value(v, _)) => Ok(v),
            _ => Err(self
                .reader
                .error("pickle: expected a value on top of the stack")),
        }
    }

    /// Pops everything above the topmost MARK (and the MARK), with their greatest depth.
    fn pop_to_mark(&mut self) -> Result<(Vec<Rc<Value>>, u16)> {
        let mark = self
            .stack
            .iter()
            .rposition(|s| matches!(s, Slot::Mark))
            .ok_or_else(|| self.err("no MARK on the stack"))?;
        let mut depth = 0;
        let items = self
            .stack
            .split_off(mark + 1)
            .into_iter()
            .filter_map(|s| match s {
                Slot::Value(v, d) => {
                    depth = depth.max(d);
                    Some(v)
                }
                Slot::Mark => None,
            })
            .collect();
        self.stack.pop();
        Ok((items, depth))
    }

    /// Makes the container on top of the stack uniquely owned (copying it if the memo shares it).
    fn top_container(&mut self) -> Result<&mut Value> {
        let copy_len = match self.top_mut()? {
            v if Rc::strong_count(v) > 1 => match &**v {
                Value::List(items) | Value::Tuple(items) => items.len(),
                Value::Dict(items) => items.len(),
                _ => 0,
            },
            _ => 0,
        };
        self.copy_work += copy_len + 1;
        if self.copy_work > MAX_COPY_WORK {
            return Err(self.err("too much copying of shared containers (hostile pickle?)"));
        }
        Ok(Rc::make_mut(self.top_mut()?))
    }

    fn string(&mut self, len: u64) -> Result<String> {
        let len = usize::try_from(len).map_err(|_| self.err("string length overflows"))?;
        let raw = self.reader.take(len)?;
        String::from_utf8(raw.to_vec()).map_err(|_| self.err("string is not UTF-8"))
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.reader.bytes[self.reader.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.err("unterminated GLOBAL name"))?;
        let s = self.string(end as u64)?;
        self.reader.skip(1)?;
        Ok(s)
    }

    fn global(&self, module: &str, name: &str) -> Result<Value> {
        AllowedGlobal::lookup(module, name)
            .map(Value::Global)
            .ok_or_else(|| {
                Error::format(
                    self.reader.what,
                    format!(
                        "pickle refers to {module}.{name}, which is not part of a plain tensor \
                     state_dict; refusing it (no code from weight files is run)"
                    ),
                )
            })
    }

    fn run(&mut self) -> Result<Rc<Value>> {
        loop {
            let at = self.reader.pos;
            let op = self.reader.u8()?;
            match op {
                0x80 => {
                    let proto = self.reader.u8()?;
                    if proto > 5 {
                        return Err(self.err(format!("unknown pickle protocol {proto}")));
                    }
                }
                0x95 => self.reader.skip(8)?, // FRAME: length of the next frame, not needed
                b'.' => return self.pop(),
                b'(' => self.stack.push(Slot::Mark),
                b'0' => {
                    self.stack
                        .pop()
                        .ok_or_else(|| self.err("POP on an empty stack"))?;
                }
                b'1' => {
                    self.pop_to_mark()?;
                }
                b'2' => {
                    let (v, depth) = self.pop_slot()?;
                    self.stack.push(Slot::Value(v.clone(), depth));
                    self.stack.push(Slot::Value(v, depth));
                }
                b'}' => self.push(Value::Dict(Vec::new())),
                b']' => self.push(Value::List(Vec::new())),
                b')' => self.push(Value::Tuple(Vec::new())),
                b't' => {
                    let (items, depth) = self.pop_to_mark()?;
                    self.push_container(Value::Tuple(items), depth)?;
                }
                b'l' => {
                    let (items, depth) = self.pop_to_mark()?;
                    self.push_container(Value::List(items), depth)?;
                }
                b'd' => {
                    let (items, depth) = self.pop_to_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(self.err("DICT with an odd number of items"));
                    }
                    let pairs = items
                        .chunks_exact(2)
                        .map(|p| (p[0].clone(), p[1].clone()))
                        .collect();
                    self.push_container(Value::Dict(pairs), depth)?;
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    let mut depth = 0;
                    for _ in 0..n {
                        let (v, d) = self.pop_slot()?;
                        depth = depth.max(d);
                        items.push(v);
                    }
                    items.reverse();
                    self.push_container(Value::Tuple(items), depth)?;
                }
                b'J' => {
                    let v = self.reader.i32()?;
                    self.push(Value::Int(v as i128));
                }
                b'K' => {
                    let v = self.reader.u8()?;
                    self.push(Value::Int(v as i128));
                }
                b'M' => {
                    let v = self.reader.u16()?;
                    self.push(Value::Int(v as i128));
                }
                0x8a => {
                    // LONG1: little-endian two's complement of n bytes (the legacy magic is 10 bytes).
                    let n = self.reader.u8()? as usize;
                    if n > 16 {
                        return Err(
                            self.err(format!("LONG1 of {n} bytes is larger than supported"))
                        );
                    }
                    let raw = self.reader.take(n)?;
                    let mut v: i128 = 0;
                    for (i, &b) in raw.iter().enumerate() {
                        v |= (b as i128) << (8 * i);
                    }
                    if n > 0 && n < 16 && raw[n - 1] & 0x80 != 0 {
                        v -= 1i128 << (8 * n);
                    }
                    self.push(Value::Int(v));
                }
                b'G' => {
                    let raw = self.reader.take(8)?;
                    let v = f64::from_be_bytes(raw.try_into().unwrap_or([0; 8]));
                    self.push(Value::Float(v));
                }
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Bool(true)),
                0x89 => self.push(Value::Bool(false)),
                b'X' | 0x8c | 0x8d | b'T' | b'U' => {
                    let len = match op {
                        b'X' | b'T' => self.reader.u32()? as u64,
                        0x8d => self.reader.u64()?,
                        _ => self.reader.u8()? as u64,
                    };
                    let s = self.string(len)?;
                    self.push(Value::Str(s));
                }
                b'B' | b'C' | 0x8e => {
                    let len = match op {
                        b'B' => self.reader.u32()? as u64,
                        0x8e => self.reader.u64()?,
                        _ => self.reader.u8()? as u64,
                    };
                    let len =
                        usize::try_from(len).map_err(|_| self.err("bytes length overflows"))?;
                    let raw = self.reader.take(len)?.to_vec();
                    self.push(Value::Bytes(raw));
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let g = self.global(&module, &name)?;
                    self.push(g);
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (&*module, &*name) {
                        (Value::Str(m), Value::Str(n)) => {
                            let g = self.global(m, n)?;
                            self.push(g);
                        }
                        _ => return Err(self.err("STACK_GLOBAL needs two strings")),
                    }
                }
                b'q' | b'r' | 0x94 => {
                    let key = match op {
                        b'q' => self.reader.u8()? as u32,
                        b'r' => self.reader.u32()?,
                        _ => self.memo.len() as u32,
                    };
                    let entry = match self.stack.last() {
                        Some(Slot::Value(v, depth)) => (v.clone(), *depth),
                        _ => return Err(self.err("PUT with no value on the stack")),
                    };
                    self.memo.insert(key, entry);
                }
                b'h' | b'j' => {
                    let key = if op == b'h' {
                        self.reader.u8()? as u32
                    } else {
                        self.reader.u32()?
                    };
                    let (v, depth) = self
                        .memo
                        .get(&key)
                        .cloned()
                        .ok_or_else(|| self.err(format!("memo key {key} was never stored")))?;
                    self.stack.push(Slot::Value(v, depth));
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let storage = self.persistent_storage(&pid)?;
                    self.push(Value::Storage(storage));
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.reduce(&callable, &args)?;
                    self.push(v);
                }
                b'b' => {
                    // BUILD: sets an object's state. The only objects here are OrderedDicts
                    // (state = their `_metadata` attribute) and tensors; the state is not needed.
                    let _state = self.pop()?;
                    let target = kind(self.top_mut()?);
                    if target != "a dict" && target != "a tensor" {
                        return Err(self.err(format!("BUILD on an unexpected object {target}")));
                    }
                }
                b's' => {
                    let (v, dv) = self.pop_slot()?;
                    let (k, dk) = self.pop_slot()?;
                    self.raise_top_depth(dv.max(dk))?;
                    match self.top_container()? {
                        Value::Dict(items) => items.push((k, v)),
                        _ => return Err(self.err("SETITEM on something that is not a dict")),
                    }
                }
                b'u' => {
                    let (items, depth) = self.pop_to_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(self.err("SETITEMS with an odd number of items"));
                    }
                    self.raise_top_depth(depth)?;
                    self.copy_work += items.len();
                    match self.top_container()? {
                        Value::Dict(dict) => {
                            dict.extend(items.chunks_exact(2).map(|p| (p[0].clone(), p[1].clone())))
                        }
                        _ => return Err(self.err("SETITEMS on something that is not a dict")),
                    }
                }
                b'a' | b'e' => {
                    let (items, depth) = if op == b'a' {
                        let (v, d) = self.pop_slot()?;
                        (vec![v], d)
                    } else {
                        self.pop_to_mark()?
                    };
                    self.raise_top_depth(depth)?;
                    self.copy_work += items.len();
                    match self.top_container()? {
                        Value::List(list) => list.extend(items),
                        _ => return Err(self.err("APPEND on something that is not a list")),
                    }
                }
                other => {
                    self.reader.pos = at;
                    return Err(self.err(format!(
                        "opcode 0x{other:02x} ({}) is not used by tensor state_dicts; refusing it",
                        opcode_name(other)
                    )));
                }
            }
        }
    }

    /// `('storage', torch.XStorage, key, location, numel[, view_metadata])`, as torch.save writes.
    fn persistent_storage(&self, pid: &Value) -> Result<StorageRef> {
        let items = match pid {
            Value::Tuple(items) if items.len() == 5 || items.len() == 6 => items,
            _ => return Err(self.err("persistent id is not a ('storage', ...) tuple")),
        };
        let (tag, ty, key, numel) = (&*items[0], &*items[1], &*items[2], &*items[4]);
        if *tag != Value::Str("storage".into()) {
            return Err(self.err("persistent id does not start with 'storage'"));
        }
        let dtype = match ty {
            Value::Global(AllowedGlobal::Storage(d)) => *d,
            _ => return Err(self.err("persistent id names no torch storage type")),
        };
        let key = match key {
            Value::Str(k) => k.clone(),
            _ => return Err(self.err("storage key is not a string")),
        };
        let numel = as_u64(numel).ok_or_else(|| self.err("storage size is not a count"))?;
        let view_of = match items.get(5).map(|v| &**v) {
            None | Some(Value::None) => None,
            Some(Value::Tuple(view)) if view.len() == 3 => {
                match (&*view[0], as_u64(&view[1]), as_u64(&view[2])) {
                    (Value::Str(root), Some(offset), Some(n)) => Some((root.clone(), offset, n)),
                    _ => return Err(self.err("malformed storage view metadata")),
                }
            }
            Some(_) => return Err(self.err("malformed storage view metadata")),
        };
        Ok(StorageRef {
            dtype,
            key,
            numel,
            view_of,
        })
    }

    fn reduce(&self, callable: &Value, args: &Value) -> Result<Value> {
        let args = match args {
            Value::Tuple(items) => items,
            _ => return Err(self.err("REDUCE arguments are not a tuple")),
        };
        match callable {
            Value::Global(AllowedGlobal::OrderedDict) => {
                if args.is_empty() {
                    Ok(Value::Dict(Vec::new()))
                } else {
                    Err(self.err("OrderedDict built from arguments is not supported"))
                }
            }
            Value::Global(AllowedGlobal::RebuildTensorV2 | AllowedGlobal::RebuildTensor) => {
                if args.len() < 4 {
                    return Err(self.err("_rebuild_tensor needs (storage, offset, size, stride)"));
                }
                let storage = match &*args[0] {
                    Value::Storage(s) => s.clone(),
                    _ => return Err(self.err("_rebuild_tensor: first argument is not a storage")),
                };
                let storage_offset = as_u64(&args[1])
                    .ok_or_else(|| self.err("_rebuild_tensor: bad storage offset"))?;
                let size =
                    int_tuple(&args[2]).ok_or_else(|| self.err("_rebuild_tensor: bad size"))?;
                let stride =
                    int_tuple(&args[3]).ok_or_else(|| self.err("_rebuild_tensor: bad stride"))?;
                if size.len() != stride.len() {
                    return Err(self.err(format!(
                        "_rebuild_tensor: size {size:?} and stride {stride:?} differ in rank"
                    )));
                }
                Ok(Value::Tensor(TensorRef {
                    storage,
                    storage_offset,
                    size,
                    stride,
                }))
            }
            Value::Global(AllowedGlobal::RebuildParameter) => match args.first().map(|a| &**a) {
                Some(Value::Tensor(t)) => Ok(Value::Tensor(t.clone())),
                _ => Err(self.err("_rebuild_parameter: first argument is not a tensor")),
            },
            other => Err(self.err(format!("REDUCE on {} is not allowed", kind(other)))),
        }
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        _ => None,
    }
}

fn int_tuple(v: &Value) -> Option<Vec<u64>> {
    match v {
        Value::Tuple(items) => items.iter().map(|i| as_u64(i)).collect(),
        _ => None,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::None => "None",
        Value::Bool(_) => "a bool",
        Value::Int(_) => "an int",
        Value::Float(_) => "a float",
        Value::Str(_) => "a string",
        Value::Bytes(_) => "bytes",
        Value::Tuple(_) => "a tuple",
        Value::List(_) => "a list",
        Value::Dict(_) => "a dict",
        Value::Global(_) => "a global",
        Value::Storage(_) => "a storage",
        Value::Tensor(_) => "a tensor",
    }
}
