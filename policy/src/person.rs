//! The person in a subsidy request, as in the API's request bodies.

use serde::{Deserialize, Serialize};

use crate::ids::IdNumber;

/// `applicant` of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Applicant {
    pub id_number: IdNumber,
    pub name: String,
}

/// `eligibility` of a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PersonEligibility {
    /// Months of unemployment insurance as an employee, at submission.
    #[serde(default)]
    pub insured_months: Option<u32>,
    /// Receiving unemployment benefit (领取失业保险金) at submission.
    pub receiving_unemployment_benefit: bool,
}
