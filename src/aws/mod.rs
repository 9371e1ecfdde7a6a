//! AWS connection set-up and error translation. Every SDK call in glbox goes
//! through [`AwsResultExt::ctx`], which names the IAM action that failed and
//! adds what to do about it.

pub mod dlm;
pub mod ec2;
pub mod s3;
pub mod sts;

use std::fmt;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::log::aws_calls::CallLog;

pub mod iam;
#[cfg(test)]
mod replay;
pub mod route53;
pub mod service_quotas;
pub mod ses;
pub mod ssm;

/// How to reach AWS: from the global flags and the SDK's usual environment.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub region: String,
    pub profile: Option<String>,
    /// `--endpoint-url`; without it the SDK still honours `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// Labs send many calls at once: adaptive retry also slows the client
    /// down when AWS throttles, instead of only retrying.
    pub adaptive_retry: bool,
}

/// A client of one service from the shared configuration, with every
/// operation recorded in the debug log.
macro_rules! client {
    ($sdk:ident, $shared:expr) => {
        $sdk::Client::from_conf(
            $sdk::config::Builder::from($shared)
                .interceptor(CallLog)
                .build(),
        )
    };
}

/// The service clients glbox uses, all for one region.
#[derive(Clone)]
pub struct Aws {
    pub ec2: aws_sdk_ec2::Client,
    pub iam: aws_sdk_iam::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub route53: aws_sdk_route53::Client,
    pub dlm: aws_sdk_dlm::Client,
    pub s3: aws_sdk_s3::Client,
    /// Run Command's agents and commands, read once for every box that
    /// waits on them.
    pub ssm_watch: std::sync::Arc<ssm::Watch>,
    pub region: String,
    /// For clients of another region (SES may live elsewhere).
    shared: aws_config::SdkConfig,
}

impl Aws {
    /// An SES client for `region` (the email identity's region, which need
    /// not be the deployment's).
    pub fn ses(&self, region: &str) -> aws_sdk_ses::Client {
        let config = aws_sdk_ses::config::Builder::from(&self.shared)
            .region(Region::new(region.to_string()))
            .interceptor(CallLog)
            .build();
        aws_sdk_ses::Client::from_conf(config)
    }

    /// For `glbox doctor`: who the credentials belong to.
    pub fn sts(&self) -> aws_sdk_sts::Client {
        client!(aws_sdk_sts, &self.shared)
    }

    /// For `glbox doctor`: the account's vCPU quota.
    pub fn service_quotas(&self) -> aws_sdk_servicequotas::Client {
        client!(aws_sdk_servicequotas, &self.shared)
    }
}

/// Throttling and 5xx answers are retried by the SDK with exponential
/// backoff and jitter; eight attempts span about a minute in the worst case.
fn retry_config(adaptive: bool) -> RetryConfig {
    let mode = if adaptive {
        RetryConfig::adaptive()
    } else {
        RetryConfig::standard()
    };
    mode.with_max_attempts(8)
        .with_initial_backoff(Duration::from_millis(500))
        .with_max_backoff(Duration::from_secs(20))
}

/// For checks (`doctor`, the quota pre-check): an answer now or a
/// warning, not a minute of retries.
pub fn probe_retry() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(2)
}

fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .operation_attempt_timeout(Duration::from_secs(60))
        .build()
}

pub async fn connect(options: &ConnectOptions) -> Aws {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(options.region.clone()))
        .retry_config(retry_config(options.adaptive_retry))
        .timeout_config(timeout_config());
    if let Some(profile) = &options.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(endpoint) = &options.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    let shared = loader.load().await;
    let ssm = client!(aws_sdk_ssm, &shared);
    Aws {
        ec2: client!(aws_sdk_ec2, &shared),
        iam: client!(aws_sdk_iam, &shared),
        ssm_watch: std::sync::Arc::new(ssm::Watch::new(ssm.clone())),
        ssm,
        route53: client!(aws_sdk_route53, &shared),
        dlm: client!(aws_sdk_dlm, &shared),
        s3: s3_client(&shared),
        region: options.region.clone(),
        shared,
    }
}

/// S3 addresses buckets by host name (`<bucket>.s3.<region>...`); an
/// endpoint of one's own (a local emulator, a proxy) serves them by path.
fn s3_client(shared: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(shared)
            .force_path_style(shared.endpoint_url().is_some())
            .interceptor(CallLog)
            .build(),
    )
}

/// The AWS partition of a region, for ARNs.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// A failed AWS call: which action, AWS's own code and message, and a fix.
#[derive(Debug)]
pub struct AwsError {
    pub action: &'static str,
    pub code: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "AWS refused {}: {code}: {}", self.action, self.message)?,
            None => write!(f, "{} failed: {}", self.action, self.message)?,
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  fix: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for AwsError {}

/// The action AWS names in a refusal ("... is not authorized to perform:
/// iam:TagRole on resource ..."): it may not be the one glbox called.
fn refused_action(message: &str) -> Option<&str> {
    let rest = message.split_once("not authorized to perform: ")?.1;
    let action = rest.split_whitespace().next()?;
    action
        .contains(':')
        .then(|| action.trim_end_matches([',', '.', ';']))
}

fn permission_hint(action: &str, message: &str) -> String {
    let policy = "add it to the policy of the user or role glbox runs as (docs/iam-policy.json has all glbox needs)";
    match refused_action(message) {
        Some(refused) if refused != action => {
            format!("your AWS identity is not allowed to call {refused} (which {action} needs): {policy}")
        }
        _ if action == "ec2:RunInstances" || message.contains("Encoded authorization failure") => format!(
            "your AWS identity is not allowed to call {action}, or an action it needs (iam:PassRole for the instance role, ec2:CreateTags for tags at launch): {policy}; `aws sts decode-authorization-message` shows which"
        ),
        _ => format!("your AWS identity is not allowed to call {action}: {policy}"),
    }
}

fn hint_for(action: &str, code: &str, message: &str) -> Option<String> {
    let hint = match code {
        "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException" => {
            permission_hint(action, message)
        }
        "AuthFailure" | "InvalidClientTokenId" | "SignatureDoesNotMatch" | "UnrecognizedClientException"
        | "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" => {
            "check your AWS credentials (--profile, AWS_PROFILE, or `aws sso login`) and that this machine's clock is right".into()
        }
        "InvalidParameterValue" if is_profile_message(message) => "EC2 still refused the instance profile after glbox waited 5 minutes for it to propagate: re-run (re-running is safe), and check that the profile exists and holds the deployment's role".into(),
        "OptInRequired" => "the region is not enabled for this account: enable it in the AWS console, or choose another region".into(),
        "InsufficientInstanceCapacity" => "AWS has no capacity for this instance type in this zone right now: re-run later, or choose another instance.type or instance.subnet_id (zone)".into(),
        "VcpuLimitExceeded" | "InstanceLimitExceeded" | "MaxSpotInstanceCountExceeded" => "your account's vCPU quota for this instance family is too low: request an increase in Service Quotas (EC2, Running On-Demand instances), or choose a smaller instance.type".into(),
        "InvalidInstanceType" | "Unsupported" => "this instance type is not offered in this region or zone: choose another instance.type, region or instance.subnet_id".into(),
        "InvalidAMIID.NotFound" | "InvalidAMIID.Malformed" | "InvalidAMIID.Unavailable" => "the AMI does not exist in this region: check instance.ami, or leave it empty to use the OS's current image".into(),
        "InvalidSubnetID.NotFound" | "InvalidSubnet" => "check that instance.subnet_id exists in this region, or leave it empty for the default VPC".into(),
        "AddressLimitExceeded" => "the account's Elastic IP quota is reached: release unused addresses, request more, or set network.elastic_ip = false".into(),
        "VolumeModificationRateExceeded" | "IncorrectModificationState" => "EBS allows one modification of a volume every 6 hours: re-run after that".into(),
        "InvalidGroup.Duplicate" => "a security group with glbox's name exists in this VPC but does not carry this deployment's tags: delete or rename it, or choose another deployment name".into(),
        "InvalidKeyPair.Duplicate" => "a key pair with glbox's name exists but does not carry this deployment's tags: delete it, or choose another deployment name".into(),
        "EntityAlreadyExists" => "an IAM role, instance profile or user with glbox's name exists but does not carry this deployment's tags: delete it, or choose another deployment name".into(),
        "RequestLimitExceeded" | "Throttling" | "ThrottlingException" => "AWS kept throttling glbox after every retry: wait a minute and re-run (re-running is safe)".into(),
        _ => return None,
    };
    Some(hint)
}

/// Adds the action name and a hint to any SDK error.
pub trait AwsResultExt<T> {
    fn ctx(self, action: &'static str) -> Result<T, AwsError>;
}

impl<T, E, R> AwsResultExt<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    fn ctx(self, action: &'static str) -> Result<T, AwsError> {
        self.map_err(|err| error(action, err))
    }
}

/// Turns an SDK error into an [`AwsError`] naming `action`.
pub fn error<E, R>(action: &'static str, err: SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    let code = err.code().map(str::to_string);
    let message = match err.message() {
        Some(message) => message.to_string(),
        None => DisplayErrorContext(&err).to_string(),
    };
    let hint = match (&code, &err) {
        (Some(code), _) => hint_for(action, code, &message),
        (None, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) => Some(
            "could not reach AWS: check the network, the region, and --endpoint-url / AWS_ENDPOINT_URL if you set one".into(),
        ),
        (None, _) => None,
    };
    AwsError {
        action,
        code,
        message,
        hint,
    }
}

/// For calls whose error `codes` mean the wanted state is there already
/// (the SDK retried a call whose first answer was lost, or someone did it
/// meanwhile): those count as success.
pub fn ok_if<T, E, R>(
    action: &'static str,
    result: Result<T, SdkError<E, R>>,
    codes: &[&str],
) -> Result<(), AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(e) if codes.iter().any(|c| has_code(&e, c)) => Ok(()),
        Err(e) => Err(error(action, e)),
    }
}

/// Refusals AWS documents as passing on their own shortly after a resource
/// was made or changed: the call is right, AWS has not caught up yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lag {
    /// EC2 is eventually consistent: an id a create call just returned may
    /// be unknown to the next calls for a while ("Eventual consistency in
    /// the Amazon EC2 API", EC2 developer guide,
    /// https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html).
    /// Only for calls naming ids glbox has just been given.
    FreshId,
    /// EC2 refuses a new or re-created instance profile ("Invalid IAM
    /// Instance Profile name") for seconds to minutes, on RunInstances,
    /// AssociateIamInstanceProfile and ReplaceIamInstanceProfileAssociation
    /// (hashicorp/terraform-provider-aws PR #3055 and issue #27516 saw over
    /// two minutes). Also when an earlier, interrupted run made the profile,
    /// so every call naming the profile waits.
    InstanceProfile,
}

/// The NotFound codes EC2 answers for the ids glbox creates.
const FRESH_ID_CODES: &[&str] = &[
    "InvalidInstanceID.NotFound",
    "InvalidGroup.NotFound",
    "InvalidAllocationID.NotFound",
    "InvalidVolume.NotFound",
    "InvalidSnapshot.NotFound",
];

impl Lag {
    /// How long AWS may take to catch up before glbox gives up.
    fn budget(self) -> Duration {
        match self {
            Lag::FreshId => Duration::from_secs(120),
            Lag::InstanceProfile => Duration::from_secs(300),
        }
    }

    fn matches(self, code: Option<&str>, message: Option<&str>) -> bool {
        match self {
            Lag::FreshId => code.is_some_and(|c| FRESH_ID_CODES.contains(&c)),
            Lag::InstanceProfile => {
                code == Some("InvalidParameterValue") && message.is_some_and(is_profile_message)
            }
        }
    }
}

fn is_profile_message(message: &str) -> bool {
    message
        .to_ascii_lowercase()
        .contains("invalid iam instance profile")
}

const FIRST_LAG_PAUSE: Duration = Duration::from_millis(250);
const MAX_LAG_PAUSE: Duration = Duration::from_secs(10);

/// Runs `call` until AWS stops giving one of the `lags`' refusals, with
/// growing pauses, for at most that lag's budget; any other answer (or the
/// last refusal) is returned. `what` names what AWS has to catch up on, for
/// the wait line of an instance profile (shown: it takes minutes); fresh
/// ids are retried with a line shown only with `-v` (they take a second).
pub async fn settled<T, E, R, F, Fut>(
    ui: &crate::ui::Ui,
    lags: &[Lag],
    what: &str,
    mut call: F,
) -> Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, R>>>,
{
    let started = tokio::time::Instant::now();
    let mut pause = FIRST_LAG_PAUSE;
    let mut waiting = None;
    loop {
        let result = call().await;
        let lag = match &result {
            Err(e) => lags
                .iter()
                .copied()
                .find(|l| l.matches(e.code(), e.message())),
            Ok(_) => None,
        };
        let lag = match lag {
            Some(lag)
                if started.elapsed() + pause <= lag.budget()
                    && !crate::checkpoint::interrupted() =>
            {
                lag
            }
            _ => {
                if let Some(waiting) = waiting.take() {
                    crate::ui::Waiting::done(waiting);
                }
                return result;
            }
        };
        match lag {
            Lag::InstanceProfile => {
                let line = format!(
                    "EC2 to accept {what} (AWS takes up to minutes after a profile is made; glbox waits up to {} min)",
                    lag.budget().as_secs() / 60
                );
                waiting
                    .get_or_insert_with(|| ui.waiting(&line))
                    .observed("Invalid IAM Instance Profile name");
            }
            Lag::FreshId => {
                let code = result.as_ref().err().and_then(|e| e.code()).unwrap_or("");
                ui.detail(&format!(
                    "{code} for an id AWS has just given (EC2 is eventually consistent): retrying"
                ))
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_LAG_PAUSE);
    }
}

/// Does this SDK error carry the given AWS error code?
pub fn has_code<E, R>(err: &SdkError<E, R>, code: &str) -> bool
where
    E: ProvideErrorMetadata,
{
    err.code() == Some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_errors_name_the_action() {
        let hint = hint_for("ec2:RunInstances", "UnauthorizedOperation", "").unwrap();
        assert!(hint.contains("ec2:RunInstances") && hint.contains("iam:PassRole"));
        let hint = hint_for("ssm:PutParameter", "AccessDeniedException", "").unwrap();
        assert!(hint.contains("not allowed to call ssm:PutParameter"));
    }

    #[test]
    fn a_refusal_of_a_side_permission_names_that_one() {
        let message = "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: iam:TagRole on resource: arn:aws:iam::123456789012:role/glbox/glbox-t-us-east-1";
        let hint = hint_for("iam:CreateRole", "AccessDenied", message).unwrap();
        assert!(
            hint.contains("not allowed to call iam:TagRole (which iam:CreateRole needs)"),
            "{hint}"
        );
    }

    #[test]
    fn capacity_and_quota_errors_say_what_to_try() {
        assert!(hint_for("ec2:RunInstances", "VcpuLimitExceeded", "")
            .unwrap()
            .contains("Service Quotas"));
        assert!(
            hint_for("ec2:RunInstances", "InsufficientInstanceCapacity", "")
                .unwrap()
                .contains("instance.type")
        );
        assert!(hint_for("x", "SomethingElse", "").is_none());
    }

    #[test]
    fn partitions_follow_the_region() {
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition("eu-west-1"), "aws");
    }
}
