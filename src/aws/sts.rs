//! STS: who the credentials belong to.

use aws_sdk_sts::Client;

use crate::aws::{AwsError, AwsResultExt};

/// The caller's identity.
pub struct Caller {
    pub arn: Option<String>,
    pub account: Option<String>,
}

pub async fn caller(sts: &Client) -> Result<Caller, AwsError> {
    let who = sts
        .get_caller_identity()
        .send()
        .await
        .ctx("sts:GetCallerIdentity")?;
    Ok(Caller {
        arn: who.arn().map(str::to_string),
        account: who.account().map(str::to_string),
    })
}
