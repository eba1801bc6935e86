//! A bounded, safe reader for the pickles inside `.pth` files.
//!
//! A `.pth` file is a Python pickle, which may ask to import and call any Python function.
//! Rust never runs Python; this reader goes further and interprets only the small subset of
//! pickle that `torch.save` emits for a state dict:
//!
//! - every global a pickle names (`GLOBAL`, `INST`, `STACK_GLOBAL`) must be on the
//!   tensor-rebuilding allow-list ([`allowed_global`]); anything else is refused before
//!   anything is built, as are extension-registry codes, text persistent ids and opcodes
//!   `torch.save` never writes;
//! - calls (`REDUCE`) of allow-listed globals are *modelled*, never executed: `OrderedDict()`
//!   makes a dict, `_rebuild_tensor_v2(storage, offset, size, stride, …)` a [`TensorView`],
//!   `_rebuild_parameter(tensor, …)` the tensor itself; any other result is opaque;
//! - storages come from persistent ids `("storage", type, key, location, numel)`
//!   ([`StorageRef`]); their bytes are read by [`super::pytorch`].
//!
//! Containers are values shared copy-on-write, so `PUT`/`GET`/`DUP` cost nothing and no
//! pickle can make the reader clone the same large object again and again. [`Limits`] bounds
//! everything else: nesting depth (no stack overflow, no deep drop), memo entries, and a work
//! budget that every value created and every element copied draws from (no quadratic time, no
//! unbounded memory). Each limit is a one-line error naming it.

use std::collections::HashMap;
use std::rc::Rc;

use safetensors::Dtype;

use crate::error::AlexNetError;

/// Bounds on one pickle's interpretation. The defaults are far above what any AlexNet
/// checkpoint needs: a torchvision state dict's pickle is about 2 kB, nests 4 levels, memoizes
/// about 60 objects and creates about 400 values.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deepest nesting of containers (tuples, lists, dicts).
    pub max_depth: usize,
    /// Most memo entries.
    pub max_memo: usize,
    /// Values created plus container elements copied, in total.
    pub max_work: u64,
}

impl Limits {
    /// The limits `.pth` files are read with.
    pub const DEFAULT: Limits = Limits {
        max_depth: 100,
        max_memo: 100_000,
        max_work: 10_000_000,
    };
}

/// Why a pickle is not accepted.
#[derive(Debug)]
pub(super) enum PickleError {
    /// It asks for something off the allow-list, or for machinery torch.save never emits.
    Refused(String),
    /// It is truncated or malformed, or goes past a [`Limits`] bound.
    Malformed(String),
}

impl From<String> for PickleError {
    fn from(message: String) -> Self {
        Self::Malformed(message)
    }
}

impl From<&str> for PickleError {
    fn from(message: &str) -> Self {
        Self::Malformed(message.to_string())
    }
}

impl PickleError {
    /// The model crate's error, `context` (the pickle's name) first.
    pub(super) fn in_pickle(self, context: &str) -> AlexNetError {
        match self {
            Self::Refused(message) => AlexNetError::UnsafePickle(format!("{context}{message}")),
            Self::Malformed(message) => AlexNetError::Weights(format!("{context}{message}")),
        }
    }
}

/// Globals a PyTorch state dict may name: the containers and the tensor-rebuilding functions
/// `torch.save` emits, nothing that runs code of its own.
fn allowed_global(module: &str, name: &str) -> bool {
    match module {
        "collections" => name == "OrderedDict",
        "torch._utils" => matches!(
            name,
            "_rebuild_tensor"
                | "_rebuild_tensor_v2"
                | "_rebuild_parameter"
                | "_rebuild_parameter_with_state"
        ),
        "torch._tensor" => name == "_rebuild_from_type_v2",
        "torch" => storage_dtype(name).is_some() || matches!(name, "Size" | "Tensor"),
        "torch.storage" => matches!(name, "UntypedStorage" | "TypedStorage"),
        "torch.nn.parameter" => name == "Parameter",
        _ => false,
    }
}

/// The element type of a `torch.*Storage` class.
fn storage_dtype(class: &str) -> Option<Dtype> {
    Some(match class.rsplit('.').next()? {
        "FloatStorage" => Dtype::F32,
        "DoubleStorage" => Dtype::F64,
        "HalfStorage" => Dtype::F16,
        "BFloat16Storage" => Dtype::BF16,
        "LongStorage" => Dtype::I64,
        "IntStorage" => Dtype::I32,
        "ShortStorage" => Dtype::I16,
        "CharStorage" => Dtype::I8,
        "ByteStorage" | "UntypedStorage" => Dtype::U8,
        "BoolStorage" => Dtype::BOOL,
        _ => return None,
    })
}

/// A storage a pickle refers to.
#[derive(Debug, PartialEq)]
pub(super) struct StorageRef {
    /// Its key: the file name under `data/` in a zip archive, the record key in a legacy file.
    pub key: String,
    /// Its element type.
    pub dtype: Dtype,
    /// How many elements it holds.
    pub numel: u64,
}

impl StorageRef {
    /// Bytes one element takes.
    pub fn element_bytes(&self) -> usize {
        self.dtype.bitsize() / 8
    }

    /// Bytes its elements take (saturating: a huge count is refused by the size checks).
    pub fn bytes(&self) -> u64 {
        self.numel.saturating_mul(self.element_bytes() as u64)
    }
}

/// A tensor as `torch.save` describes it: a strided view into a storage.
#[derive(Debug)]
pub(super) struct TensorView {
    /// The storage holding its elements.
    pub storage: Rc<StorageRef>,
    /// Index of its first element in the storage.
    pub offset: i64,
    /// Its shape.
    pub size: Vec<i64>,
    /// Elements to step in the storage per step along each dimension.
    pub stride: Vec<i64>,
}

/// Elements of a tuple, list or dict (a dict's keys and values alternate), with the nesting
/// depth they reach.
#[derive(Debug, Clone, Default)]
pub(super) struct Items {
    depth: usize,
    pub values: Vec<Value>,
}

/// A pickled value, as far as a state dict needs one.
#[derive(Debug, Clone)]
pub(super) enum Value {
    /// `MARK` (only ever on the stack).
    Mark,
    None,
    Bool(bool),
    Int(i64),
    Str(Rc<str>),
    /// A float, an integer beyond `i64`, bytes, sets, the results of calls not modelled.
    Opaque,
    /// An allow-listed `module.name`.
    Global(Rc<str>),
    Tuple(Rc<Items>),
    List(Rc<Items>),
    Dict(Rc<Items>),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorView>),
}

impl Value {
    fn depth(&self) -> usize {
        match self {
            Value::Tuple(items) | Value::List(items) | Value::Dict(items) => items.depth,
            _ => 0,
        }
    }

    fn container(values: Vec<Value>, limits: &Limits) -> Result<Rc<Items>, PickleError> {
        let depth = 1 + values.iter().map(Value::depth).max().unwrap_or(0);
        check_depth(depth, limits)?;
        Ok(Rc::new(Items { depth, values }))
    }

    fn tuple(values: Vec<Value>, limits: &Limits) -> Result<Value, PickleError> {
        Ok(Value::Tuple(Value::container(values, limits)?))
    }

    /// A dict's (key, value) pairs.
    pub fn pairs(items: &Items) -> impl Iterator<Item = (&Value, &Value)> {
        items.values.chunks_exact(2).map(|kv| (&kv[0], &kv[1]))
    }
}

fn check_depth(depth: usize, limits: &Limits) -> Result<(), PickleError> {
    if depth > limits.max_depth {
        return Err(format!(
            "the pickle nests containers deeper than the reader's limit of {}",
            limits.max_depth
        )
        .into());
    }
    Ok(())
}

/// One pickle's interpretation in progress.
struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    memo: HashMap<u64, Value>,
    limits: Limits,
    work: u64,
}

impl<'a> Machine<'a> {
    fn spend(&mut self, amount: usize) -> Result<(), PickleError> {
        self.work = self.work.saturating_add(amount as u64);
        if self.work > self.limits.max_work {
            return Err(format!(
                "the pickle builds more than the reader's limit of {} values",
                self.limits.max_work
            )
            .into());
        }
        Ok(())
    }

    fn push(&mut self, value: Value) -> Result<(), PickleError> {
        self.spend(1)?;
        self.stack.push(value);
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or("truncated pickle")?;
        let slice = &self.data[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn uint(&mut self, width: usize) -> Result<u64, PickleError> {
        Ok(self
            .take(width)?
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    /// A length prefix of `width` bytes, then that many bytes.
    fn counted(&mut self, width: usize) -> Result<&'a [u8], PickleError> {
        let n = usize::try_from(self.uint(width)?).map_err(|_| "truncated pickle")?;
        self.take(n)
    }

    /// Text up to the next newline (protocol 0 arguments).
    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("truncated pickle")?;
        self.pos += n + 1;
        Ok(String::from_utf8_lossy(&rest[..n]).into_owned())
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        match self.stack.pop() {
            Some(Value::Mark) | None => Err("malformed pickle (stack underflow)".into()),
            Some(value) => Ok(value),
        }
    }

    fn top(&mut self) -> Result<&mut Value, PickleError> {
        match self.stack.last_mut() {
            Some(Value::Mark) | None => Err("malformed pickle (stack underflow)".into()),
            Some(value) => Ok(value),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let mark = self
            .stack
            .iter()
            .rposition(|value| matches!(value, Value::Mark))
            .ok_or("malformed pickle (no MARK)")?;
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items)
    }

    fn pop_n(&mut self, n: usize) -> Result<Vec<Value>, PickleError> {
        let at = self.stack.len().checked_sub(n);
        let at = at.ok_or("malformed pickle (stack underflow)")?;
        let items = self.stack.split_off(at);
        if items.iter().any(|value| matches!(value, Value::Mark)) {
            return Err("malformed pickle (stack underflow)".into());
        }
        Ok(items)
    }

    /// Adds `values` to the list or dict on top of the stack (copying it first when the memo
    /// or another container shares it: pickled values behave as values here).
    fn extend_top(&mut self, values: Vec<Value>, dict: bool) -> Result<(), PickleError> {
        if dict && !values.len().is_multiple_of(2) {
            return Err("malformed pickle (SETITEMS with an odd number of items)".into());
        }
        let limits = self.limits;
        let top = self.top()?;
        let items = match (top, dict) {
            (Value::List(items), false) | (Value::Dict(items), true) => items,
            // Sets and objects not modelled: the items are dropped.
            (Value::Opaque, _) => return Ok(()),
            _ => return Err("malformed pickle (items added to a non-container)".into()),
        };
        let copied = if Rc::strong_count(items) > 1 {
            items.values.len()
        } else {
            0
        };
        let depth = 1 + values.iter().map(Value::depth).max().unwrap_or(0);
        check_depth(depth, &limits)?;
        let items = Rc::make_mut(items);
        items.depth = items.depth.max(depth);
        items.values.extend(values);
        self.spend(copied)
    }

    fn global(&mut self, module: &str, name: &str) -> Result<Value, PickleError> {
        if !allowed_global(module, name) {
            return Err(PickleError::Refused(format!(
                "the pickle asks for `{module}.{name}`, which is not on the tensor-loading \
                 allow-list (nothing was executed)"
            )));
        }
        Ok(Value::Global(format!("{module}.{name}").into()))
    }

    fn memo_put(&mut self, key: u64) -> Result<(), PickleError> {
        let value = self.top()?.clone();
        if self.memo.len() >= self.limits.max_memo && !self.memo.contains_key(&key) {
            return Err(format!(
                "the pickle memoizes more than the reader's limit of {} objects",
                self.limits.max_memo
            )
            .into());
        }
        self.memo.insert(key, value);
        Ok(())
    }

    fn memo_get(&mut self, key: u64) -> Result<(), PickleError> {
        let value = self
            .memo
            .get(&key)
            .cloned()
            .ok_or("malformed pickle (GET of an unknown memo key)")?;
        self.push(value)
    }

    /// A text integer (`INT`, `LONG`): `01`/`00` are protocol 0's booleans.
    fn text_int(text: &str) -> Value {
        match text {
            "01" => Value::Bool(true),
            "00" => Value::Bool(false),
            _ => text
                .trim_end_matches('L')
                .parse()
                .map_or(Value::Opaque, Value::Int),
        }
    }

    /// A little-endian two's-complement integer (`LONG1`, `LONG4`).
    fn long(bytes: &[u8]) -> Value {
        if bytes.is_empty() {
            return Value::Int(0);
        }
        if bytes.len() > 8 {
            return Value::Opaque;
        }
        let fill = if bytes[bytes.len() - 1] >= 0x80 {
            0xff
        } else {
            0
        };
        let mut le = [fill; 8];
        le[..bytes.len()].copy_from_slice(bytes);
        Value::Int(i64::from_le_bytes(le))
    }

    /// A storage from `BINPERSID`'s `("storage", type, key, location, numel[, view])`.
    fn storage(pid: Value) -> Result<Value, PickleError> {
        let unreadable = || PickleError::Refused("an unreadable storage reference".into());
        let Value::Tuple(items) = pid else {
            return Err(unreadable());
        };
        match items.values.as_slice() {
            [Value::Str(tag), Value::Global(class), Value::Str(key), _, Value::Int(numel), rest @ ..]
                if &**tag == "storage" && matches!(rest, [] | [Value::None]) =>
            {
                let dtype = storage_dtype(class).ok_or_else(unreadable)?;
                let numel = u64::try_from(*numel)
                    .map_err(|_| format!("storage `{key}` declares {numel} elements"))?;
                Ok(Value::Storage(Rc::new(StorageRef {
                    key: key.to_string(),
                    dtype,
                    numel,
                })))
            }
            _ => Err(unreadable()),
        }
    }

    /// What calling the allow-listed `callable` with `args` gives, as `torch.load` would build
    /// it (nothing is executed).
    fn call(&mut self, callable: Value, args: Value) -> Result<Value, PickleError> {
        let (Value::Global(name), Value::Tuple(args)) = (&callable, &args) else {
            return Ok(Value::Opaque);
        };
        let args = args.values.as_slice();
        Ok(match (&**name, args) {
            ("collections.OrderedDict", []) => Value::Dict(Value::container(vec![], &self.limits)?),
            (
                "torch._utils._rebuild_tensor_v2" | "torch._utils._rebuild_tensor",
                [Value::Storage(storage), Value::Int(offset), Value::Tuple(size), Value::Tuple(stride), ..],
            ) => {
                let ints = |items: &Items| -> Result<Vec<i64>, PickleError> {
                    items
                        .values
                        .iter()
                        .map(|value| match value {
                            Value::Int(i) => Ok(*i),
                            _ => Err("malformed tensor record (a size or stride is not an \
                                      integer)"
                                .into()),
                        })
                        .collect()
                };
                self.spend(size.values.len() + stride.values.len())?;
                Value::Tensor(Rc::new(TensorView {
                    storage: storage.clone(),
                    offset: *offset,
                    size: ints(size)?,
                    stride: ints(stride)?,
                }))
            }
            ("torch._utils._rebuild_tensor_v2" | "torch._utils._rebuild_tensor", _) => {
                return Err("malformed tensor record".into())
            }
            (
                "torch._utils._rebuild_parameter"
                | "torch._utils._rebuild_parameter_with_state"
                | "torch.nn.parameter.Parameter",
                [tensor @ Value::Tensor(_), ..],
            ) => tensor.clone(),
            ("torch._tensor._rebuild_from_type_v2", [function, _, inner @ Value::Tuple(_), ..]) => {
                self.call(function.clone(), inner.clone())?
            }
            ("torch.Size", [size @ Value::Tuple(_)]) => size.clone(),
            _ => Value::Opaque,
        })
    }

    /// Runs from `pos` to `STOP` and returns the value left on the stack.
    fn run(&mut self) -> Result<Value, PickleError> {
        loop {
            let at = self.pos;
            let op = self.take(1)?[0];
            match op {
                b'.' => {
                    // STOP
                    let value = self.pop()?;
                    return Ok(value);
                }
                0x80 => {
                    self.take(1)?; // PROTO
                }
                0x95 => {
                    self.take(8)?; // FRAME
                }
                b'(' => self.push(Value::Mark)?,
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'}' => self.push(Value::Dict(Rc::default()))?,
                b']' => self.push(Value::List(Rc::default()))?,
                b')' => self.push(Value::Tuple(Rc::default()))?,
                0x8f => self.push(Value::Opaque)?, // EMPTY_SET
                b'K' => {
                    let value = self.uint(1)? as i64;
                    self.push(Value::Int(value))?
                }
                b'M' => {
                    let value = self.uint(2)? as i64;
                    self.push(Value::Int(value))?
                }
                b'J' => {
                    let value = self.uint(4)? as u32 as i32;
                    self.push(Value::Int(value.into()))?
                }
                b'G' => {
                    self.take(8)?; // BINFLOAT
                    self.push(Value::Opaque)?
                }
                b'I' | b'L' => {
                    let text = self.line()?;
                    self.push(Self::text_int(&text))?
                }
                b'F' => {
                    self.line()?; // FLOAT
                    self.push(Value::Opaque)?
                }
                0x8a | 0x8b => {
                    let bytes = self.counted(if op == 0x8a { 1 } else { 4 })?; // LONG1, LONG4
                    self.push(Self::long(bytes))?
                }
                // Strings.
                b'X' | 0x8c | 0x8d | b'T' | b'U' => {
                    let width = match op {
                        b'X' | b'T' => 4,
                        0x8d => 8,
                        _ => 1,
                    };
                    let text = String::from_utf8_lossy(self.counted(width)?);
                    self.push(Value::Str(text.into()))?
                }
                b'V' | b'S' => {
                    let text = self.line()?;
                    let text = text.trim_matches(['\'', '"']);
                    self.push(Value::Str(text.into()))?
                }
                // Bytes.
                b'B' | b'C' | 0x8e | 0x96 => {
                    let width = match op {
                        b'B' => 4,
                        b'C' => 1,
                        _ => 8,
                    };
                    self.counted(width)?;
                    self.push(Value::Opaque)?
                }
                // Globals.
                b'c' => {
                    let (module, name) = (self.line()?, self.line()?);
                    let global = self.global(&module, &name)?;
                    self.push(global)?
                }
                b'i' => {
                    let (module, name) = (self.line()?, self.line()?);
                    self.global(&module, &name)?;
                    self.pop_mark()?;
                    self.push(Value::Opaque)?
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(module), Value::Str(name)) = (module, name) else {
                        return Err(PickleError::Refused(
                            "a STACK_GLOBAL whose names are not plain strings".into(),
                        ));
                    };
                    let global = self.global(&module, &name)?;
                    self.push(global)?
                }
                0x82..=0x84 => {
                    return Err(PickleError::Refused(
                        "the pickle uses the copyreg extension registry".into(),
                    ))
                }
                // Memo.
                b'q' => {
                    let key = self.uint(1)?;
                    self.memo_put(key)?
                }
                b'r' => {
                    let key = self.uint(4)?;
                    self.memo_put(key)?
                }
                b'p' => {
                    let key = self.line()?.parse().map_err(|_| "malformed PUT")?;
                    self.memo_put(key)?
                }
                0x94 => self.memo_put(self.memo.len() as u64)?,
                b'h' => {
                    let key = self.uint(1)?;
                    self.memo_get(key)?
                }
                b'j' => {
                    let key = self.uint(4)?;
                    self.memo_get(key)?
                }
                b'g' => {
                    let key = self.line()?.parse().map_err(|_| "malformed GET")?;
                    self.memo_get(key)?
                }
                // Persistent ids (torch's storages).
                b'P' => {
                    return Err(PickleError::Refused(
                        "a text persistent id (torch.save writes none)".into(),
                    ))
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let storage = Self::storage(pid)?;
                    self.push(storage)?
                }
                // Stack manipulation.
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let top = self.top()?.clone();
                    self.push(top)?
                }
                // Building containers.
                b't' => {
                    let items = self.pop_mark()?;
                    let tuple = Value::tuple(items, &self.limits)?;
                    self.push(tuple)?
                }
                0x85..=0x87 => {
                    let items = self.pop_n((op - 0x84) as usize)?;
                    let tuple = Value::tuple(items, &self.limits)?;
                    self.push(tuple)?
                }
                b'l' | b'd' => {
                    let items = Value::container(self.pop_mark()?, &self.limits)?;
                    if op == b'd' && !items.values.len().is_multiple_of(2) {
                        return Err("malformed pickle (DICT with an odd number of items)".into());
                    }
                    self.push(if op == b'l' {
                        Value::List(items)
                    } else {
                        Value::Dict(items)
                    })?
                }
                0x91 | b'o' => {
                    // FROZENSET, OBJ
                    self.pop_mark()?;
                    self.push(Value::Opaque)?
                }
                b'a' => {
                    let value = self.pop()?;
                    self.extend_top(vec![value], false)?
                }
                b'e' | 0x90 => {
                    // APPENDS, ADDITEMS
                    let values = self.pop_mark()?;
                    self.extend_top(values, false)?
                }
                b's' => {
                    let pair = self.pop_n(2)?;
                    self.extend_top(pair, true)?
                }
                b'u' => {
                    let values = self.pop_mark()?;
                    self.extend_top(values, true)?
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let value = self.call(callable, args)?;
                    self.push(value)?
                }
                0x81 => {
                    // NEWOBJ: objects torch.save's state dicts do not need.
                    self.pop_n(2)?;
                    self.push(Value::Opaque)?
                }
                0x92 => {
                    self.pop_n(3)?; // NEWOBJ_EX
                    self.push(Value::Opaque)?
                }
                b'b' => {
                    // BUILD: the state (an OrderedDict's `_metadata`, a parameter's
                    // attributes) is not needed.
                    self.pop()?;
                    self.top()?;
                }
                other => {
                    return Err(PickleError::Refused(format!(
                        "unknown or unsupported pickle opcode 0x{other:02x} at byte {at}"
                    )))
                }
            }
        }
    }
}

/// Interprets the pickle starting at `start` in `data` (see the module docs) and returns its
/// value and the offset just after its `STOP`.
pub(super) fn read_pickle(
    data: &[u8],
    start: usize,
    limits: Limits,
) -> Result<(Value, usize), PickleError> {
    let mut machine = Machine {
        data,
        pos: start,
        stack: Vec::new(),
        memo: HashMap::new(),
        limits,
        work: 0,
    };
    let value = machine.run()?;
    Ok((value, machine.pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<Value, PickleError> {
        read_pickle(bytes, 0, Limits::DEFAULT).map(|(value, _)| value)
    }

    fn message(bytes: &[u8]) -> String {
        match read(bytes) {
            Err(PickleError::Malformed(m) | PickleError::Refused(m)) => m,
            Ok(value) => panic!("accepted: {value:?}"),
        }
    }

    #[test]
    fn nesting_past_the_limit_is_refused_without_recursion() {
        // A million nested one-element tuples: `(` ... `t` would need a mark each, so use
        // TUPLE1 (0x85) after an empty tuple.
        let mut bytes = vec![0x80, 0x02, b')'];
        bytes.extend(std::iter::repeat_n(0x85, 1_000_000));
        bytes.push(b'.');
        assert!(message(&bytes).contains("deeper than the reader's limit of 100"));
        // Lists built from marks: `((((…N llll…`.
        let mut bytes = vec![0x80, 0x02];
        bytes.extend(std::iter::repeat_n(b'(', 1000));
        bytes.push(b'N');
        bytes.extend(std::iter::repeat_n(b'l', 1000));
        bytes.push(b'.');
        assert!(message(&bytes).contains("deeper than the reader's limit of 100"));
    }

    #[test]
    fn doubling_a_tuple_64_times_is_cheap() {
        // DUP + TUPLE2, 64 times: 2^64 leaves if values were copied; shared, it is 128 values.
        let mut bytes = vec![0x80, 0x02, b'K', 1];
        for _ in 0..64 {
            bytes.extend([b'2', 0x86]);
        }
        bytes.push(b'.');
        let started = std::time::Instant::now();
        read(&bytes).unwrap();
        assert!(started.elapsed().as_secs() < 2);
    }

    #[test]
    fn memo_put_of_a_large_list_many_times_is_cheap() {
        // A list of 100,000 ints, then PUT + GET 100,000 times.
        let mut bytes = vec![0x80, 0x02, b']', b'('];
        bytes.extend(std::iter::repeat_n([b'K', 7], 100_000).flatten());
        bytes.push(b'e');
        for _ in 0..100_000 {
            bytes.extend([b'q', 0, b'0', b'h', 0]);
        }
        bytes.push(b'.');
        let started = std::time::Instant::now();
        read(&bytes).unwrap();
        assert!(started.elapsed().as_secs() < 2);
    }

    #[test]
    fn appending_to_a_shared_list_draws_from_the_work_budget() {
        // PUT then APPEND, repeatedly: every APPEND copies the memoized list (Python would
        // share it; the copies are what the budget bounds).
        let mut bytes = vec![0x80, 0x02, b']'];
        for _ in 0..10_000 {
            bytes.extend([b'q', 0, b'K', 1, b'a']);
        }
        bytes.push(b'.');
        assert!(message(&bytes).contains("limit of 10000000 values"));
    }

    #[test]
    fn memo_entries_are_bounded() {
        let mut bytes = vec![0x80, 0x02, b'N'];
        for i in 0..200_000u32 {
            bytes.push(b'r');
            bytes.extend(i.to_le_bytes());
        }
        bytes.push(b'.');
        assert!(message(&bytes).contains("limit of 100000 objects"));
    }

    #[test]
    fn negative_sizes_and_counts_are_errors() {
        // ("storage", torch.FloatStorage, "0", "cpu", -1) as a persistent id.
        let mut bytes = vec![0x80, 0x02, b'('];
        bytes.extend(b"X\x07\x00\x00\x00storage");
        bytes.extend(b"ctorch\nFloatStorage\n");
        bytes.extend(b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpu");
        bytes.extend(b"J\xff\xff\xff\xfft");
        bytes.extend(b"Q.");
        assert!(message(&bytes).contains("declares -1 elements"));
        // BINUNICODE with a length past the end.
        assert!(message(b"\x80\x02X\xff\xff\xff\xff.").contains("truncated"));
    }
}
