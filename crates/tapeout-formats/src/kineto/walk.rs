//! The streaming walk over the top-level object, shared by both passes: serde `Visitor`s hand
//! each element of `traceEvents` to a [`Handler`] as a borrowed `&RawValue`, and keep the small
//! header keys.

use std::borrow::Cow;

use serde::de::{DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{Device, EmitError, KinetoError, TraceHeader, json_error};

/// What a pass does with each event, and where its progress reports go.
pub(super) trait Handler<'a> {
    /// The error of the caller's sink.
    type Error;
    fn event(&mut self, index: u64, raw: &'a RawValue) -> Result<(), EmitError<Self::Error>>;
    /// The byte offset reached, every [`PROGRESS_EVERY`] events.
    fn progress(&mut self, offset: usize) -> Result<(), Self::Error>;
}

#[derive(Default)]
pub(super) struct RawHeader {
    saw_events: bool,
    pub(super) events: u64,
    device_properties: Option<serde_json::Value>,
    distributed_info: Option<serde_json::Value>,
    base_time: Option<serde_json::Value>,
    schema_version: Option<serde_json::Value>,
}

/// Events between two progress calls.
const PROGRESS_EVERY: u64 = 8192;

struct TopVisitor<'h, 'a, H: Handler<'a>> {
    handler: &'h mut H,
    want_header: bool,
    failure: &'h mut Option<EmitError<H::Error>>,
    base: usize,
    _doc: std::marker::PhantomData<&'a ()>,
}

impl<'a, H: Handler<'a>> Visitor<'a> for TopVisitor<'_, 'a, H> {
    type Value = RawHeader;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a trace object with `traceEvents`")
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<RawHeader, A::Error> {
        let mut h = RawHeader::default();
        while let Some(key) = map.next_key::<Cow<'a, str>>()? {
            let slot = match key.as_ref() {
                "traceEvents" => {
                    h.saw_events = true;
                    let seed = EventsSeed {
                        handler: &mut *self.handler,
                        failure: &mut *self.failure,
                        first: h.events,
                        base: self.base,
                        _doc: std::marker::PhantomData,
                    };
                    h.events = map.next_value_seed(seed)?;
                    continue;
                }
                _ if !self.want_header => None,
                "deviceProperties" => Some(&mut h.device_properties),
                "distributedInfo" => Some(&mut h.distributed_info),
                "baseTimeNanoseconds" => Some(&mut h.base_time),
                "schemaVersion" => Some(&mut h.schema_version),
                _ => None,
            };
            match slot {
                // Small values: a few devices, a process-group table, two scalars.
                Some(slot) => *slot = Some(map.next_value()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(h)
    }
}

struct EventsSeed<'h, 'a, H: Handler<'a>> {
    handler: &'h mut H,
    failure: &'h mut Option<EmitError<H::Error>>,
    /// Events already seen (a second `traceEvents` key continues the numbering).
    first: u64,
    /// Address of the document's first byte, to turn an event's address into an offset.
    base: usize,
    _doc: std::marker::PhantomData<&'a ()>,
}

impl<'a, H: Handler<'a>> DeserializeSeed<'a> for EventsSeed<'_, 'a, H> {
    type Value = u64;

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'a, H: Handler<'a>> Visitor<'a> for EventsSeed<'_, 'a, H> {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of trace events")
    }

    fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut n = self.first;
        while let Some(raw) = seq.next_element::<&'a RawValue>()? {
            n += 1;
            if n.is_multiple_of(PROGRESS_EVERY)
                && let Err(e) = self.handler.progress((raw.get().as_ptr() as usize).saturating_sub(self.base))
            {
                *self.failure = Some(EmitError::Sink(e));
                return Err(A::Error::custom("stopped by the progress callback"));
            }
            if let Err(e) = self.handler.event(n, raw) {
                *self.failure = Some(e);
                return Err(A::Error::custom("stopped by the batch consumer"));
            }
        }
        Ok(n)
    }
}

/// Walks one document, handing every event to `handler`; returns the header keys (read only
/// when `want_header`).
pub(super) fn walk<'a, H: Handler<'a>>(
    bytes: &'a [u8],
    handler: &mut H,
    want_header: bool,
) -> Result<RawHeader, EmitError<H::Error>> {
    let body = crate::strip_bom(bytes);
    match body.iter().find(|c| !c.is_ascii_whitespace()) {
        None => return Err(KinetoError::NotATrace { reason: "the input is empty".into() }.into()),
        Some(b'{') => {}
        Some(_) => return Err(KinetoError::NotATrace { reason: "the document is not a JSON object".into() }.into()),
    }
    let mut failure = None;
    let mut de = serde_json::Deserializer::from_slice(body);
    let result = (&mut de)
        .deserialize_map(TopVisitor {
            handler,
            want_header,
            failure: &mut failure,
            base: bytes.as_ptr() as usize,
            _doc: std::marker::PhantomData,
        })
        .and_then(|h| de.end().map(|()| h));
    if let Some(f) = failure {
        return Err(f);
    }
    let header = result.map_err(json_error)?;
    if !header.saw_events {
        return Err(KinetoError::NotATrace { reason: "the top-level object has no `traceEvents`".into() }.into());
    }
    Ok(header)
}

pub(super) fn interpret_header(raw: RawHeader) -> TraceHeader {
    let mut h = TraceHeader::default();
    match &raw.distributed_info {
        Some(d) => {
            match d.get("rank").and_then(|r| r.as_i64()).and_then(|r| i32::try_from(r).ok()) {
                Some(r) => h.rank = r,
                None => h.warnings.push("distributedInfo has no integer `rank`; rank defaults to 0".into()),
            }
            h.world_size = d.get("world_size").and_then(|w| w.as_i64());
            h.backend = d.get("backend").and_then(|b| b.as_str()).map(str::to_string);
        }
        None => h.warnings.push("no distributedInfo; rank defaults to 0".into()),
    }
    h.base_time_ns = raw.base_time.as_ref().and_then(|b| {
        b.as_i64().or_else(|| b.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18).map(|f| f as i64))
    });
    if raw.base_time.is_some() && h.base_time_ns.is_none() {
        h.warnings.push("baseTimeNanoseconds is not an integer; start_time left null".into());
    }
    h.schema_version = raw.schema_version.map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
    match raw.device_properties {
        Some(serde_json::Value::Array(list)) => h.devices = list.iter().map(Device::from_json).collect(),
        Some(_) => h.warnings.push("deviceProperties is not an array; no device rows".into()),
        None => {}
    }
    h
}
