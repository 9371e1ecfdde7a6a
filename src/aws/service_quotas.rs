//! The Service Quotas gateway: the account's applied value of a quota.

use aws_sdk_servicequotas::Client;

use crate::aws::{probe_retry, AwsError, AwsResultExt};

/// The applied value of the quota `code` of `service` (`None` when Service
/// Quotas answers without one). A probe: an answer now or the error, not
/// a minute of retries.
pub async fn applied_value(
    quotas: &Client,
    service: &str,
    code: &str,
) -> Result<Option<f64>, AwsError> {
    let out = quotas
        .get_service_quota()
        .service_code(service)
        .quota_code(code)
        .customize()
        .config_override(
            aws_sdk_servicequotas::config::Builder::default().retry_config(probe_retry()),
        )
        .send()
        .await
        .ctx("servicequotas:GetServiceQuota")?;
    Ok(out.quota().and_then(|q| q.value()))
}
