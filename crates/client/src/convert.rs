//! Conversions between the wire enums and the FHE crate's types.

use blindledger_fhe::LedgerWidth;
use blindledger_proto::ledger::v1 as pb;

use crate::ClientError;

/// Returns the wire value of a ledger width.
pub fn width_to_proto(width: LedgerWidth) -> pb::LedgerWidth {
    match width {
        LedgerWidth::U32 => pb::LedgerWidth::U32,
        LedgerWidth::U64 => pb::LedgerWidth::U64,
    }
}

/// Reads a ledger width sent by the ledger; unspecified or unknown values are a protocol
/// error.
pub fn width_from_proto(value: i32) -> Result<LedgerWidth, ClientError> {
    match pb::LedgerWidth::try_from(value) {
        Ok(pb::LedgerWidth::U32) => Ok(LedgerWidth::U32),
        Ok(pb::LedgerWidth::U64) => Ok(LedgerWidth::U64),
        _ => Err(ClientError::Protocol(format!(
            "unknown ledger width {value}"
        ))),
    }
}

/// Whether a job reached a final state (committed or failed).
pub fn is_finished(job: &pb::Job) -> bool {
    matches!(job.state(), pb::JobState::Committed | pb::JobState::Failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_round_trip() {
        for width in [LedgerWidth::U32, LedgerWidth::U64] {
            let wire = width_to_proto(width) as i32;
            assert_eq!(width_from_proto(wire).ok(), Some(width));
        }
        assert!(width_from_proto(0).is_err());
        assert!(width_from_proto(99).is_err());
    }

    #[test]
    fn only_committed_and_failed_are_final() {
        let job = |state: pb::JobState| pb::Job {
            state: state as i32,
            ..Default::default()
        };
        assert!(!is_finished(&job(pb::JobState::Pending)));
        assert!(!is_finished(&job(pb::JobState::Running)));
        assert!(is_finished(&job(pb::JobState::Committed)));
        assert!(is_finished(&job(pb::JobState::Failed)));
    }
}
