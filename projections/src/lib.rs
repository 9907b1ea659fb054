//! Pure folds from events to read models. No I/O: a replay, a rebuild and a test need no
//! database, only the events.

pub mod applications;
pub mod pools;

/// An event this crate cannot read: a stored row that does not match its type's schema.
#[derive(Debug, thiserror::Error)]
#[error("event {event_type} does not read as its schema: {source}")]
pub struct ProjectionError {
    pub event_type: String,
    #[source]
    pub source: serde_json::Error,
}

pub(crate) fn decode<E: events::DomainEvent>(
    event_type: &str,
    data: &serde_json::Value,
) -> Result<E, ProjectionError> {
    E::deserialize(data)
        .map_err(|source| ProjectionError { event_type: event_type.to_string(), source })
}
