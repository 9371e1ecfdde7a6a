//! The SSM gateway: Parameter Store (a box's and a lab's secrets, records,
//! leases) and Run Command (the SSM transport). Every SSM call glbox makes
//! is here, with its batching, pagination and "already done" rules.

use aws_sdk_ssm::error::SdkError;
use aws_sdk_ssm::types::{ParameterStringFilter, ParameterType, ResourceTypeForTagging, Tag};
use aws_sdk_ssm::Client;

use crate::aws::{has_code, ok_if, AwsError, AwsResultExt};
use crate::error::Result;

mod watch;
pub use watch::Watch;

/// DeleteParameters and GetParameters take at most 10 names a request.
/// <https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteParameters.html>
const NAMES_PER_REQUEST: usize = 10;

/// A parameter to write.
pub struct Parameter<'a> {
    pub name: &'a str,
    pub description: String,
    pub kind: ParameterType,
    pub value: &'a str,
    /// Replace the value of an existing parameter. Without it an existing
    /// parameter is left as it is (see [`Put`]).
    pub overwrite: bool,
    /// SSM takes tags only when a parameter is created (not with
    /// `overwrite`).
    pub tags: Vec<(String, String)>,
}

/// What a PutParameter did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Written,
    /// Without `overwrite`, a parameter of that name was there already
    /// (ParameterAlreadyExists): another run's, or this call's own first
    /// attempt whose answer was lost. Its value was not changed.
    AlreadyExists,
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder()
        .key(key)
        .value(value)
        .build()
        .expect("key and value are set")
}

pub async fn put(ssm: &Client, parameter: &Parameter<'_>) -> Result<Put> {
    let tags = parameter.tags.iter().map(|(k, v)| tag(k, v)).collect();
    let put = ssm
        .put_parameter()
        .name(parameter.name)
        .description(&parameter.description)
        .r#type(parameter.kind.clone())
        .value(parameter.value)
        .overwrite(parameter.overwrite)
        .set_tags((!parameter.tags.is_empty()).then_some(tags))
        .send()
        .await;
    match put {
        Ok(_) => Ok(Put::Written),
        Err(e) if !parameter.overwrite && has_code(&e, "ParameterAlreadyExists") => {
            Ok(Put::AlreadyExists)
        }
        Err(e) => Err(crate::aws::error("ssm:PutParameter", e).into()),
    }
}

/// Adds (or replaces) tags on an existing parameter: PutParameter cannot
/// change them.
/// <https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AddTagsToResource.html>
pub async fn add_tags(ssm: &Client, name: &str, tags: &[(&str, &str)]) -> Result<()> {
    ssm.add_tags_to_resource()
        .resource_type(ResourceTypeForTagging::Parameter)
        .resource_id(name)
        .set_tags(Some(tags.iter().map(|(k, v)| tag(k, v)).collect()))
        .send()
        .await
        .ctx("ssm:AddTagsToResource")?;
    Ok(())
}

/// One parameter's value; `None` when there is no such parameter.
pub async fn find(ssm: &Client, name: &str, decrypt: bool) -> Result<Option<String>> {
    match ssm
        .get_parameter()
        .name(name)
        .set_with_decryption(decrypt.then_some(true))
        .send()
        .await
    {
        Ok(out) => Ok(Some(
            out.parameter()
                .and_then(|p| p.value())
                .unwrap_or_default()
                .to_string(),
        )),
        Err(SdkError::ServiceError(e)) if e.err().is_parameter_not_found() => Ok(None),
        Err(e) => Err(crate::aws::error("ssm:GetParameter", e).into()),
    }
}

/// One parameter that must exist (its absence is AWS's error); `None`
/// when it has no value.
pub async fn get(ssm: &Client, name: &str, decrypt: bool) -> Result<Option<String>> {
    let out = ssm
        .get_parameter()
        .name(name)
        .with_decryption(decrypt)
        .send()
        .await
        .ctx("ssm:GetParameter")?;
    Ok(out.parameter().and_then(|p| p.value()).map(str::to_string))
}

/// The values of those of `names` that exist, by name: GetParameters, 10
/// names a request.
pub async fn get_many(
    ssm: &Client,
    names: &[String],
    decrypt: bool,
) -> Result<Vec<(String, String)>> {
    let mut values = Vec::new();
    for chunk in names.chunks(NAMES_PER_REQUEST) {
        let out = ssm
            .get_parameters()
            .set_names(Some(chunk.to_vec()))
            .with_decryption(decrypt)
            .send()
            .await
            .ctx("ssm:GetParameters")?;
        for p in out.parameters() {
            if let (Some(name), Some(value)) = (p.name(), p.value()) {
                values.push((name.to_string(), value.to_string()));
            }
        }
    }
    Ok(values)
}

/// The names of the parameters under `path`, recursively (values are not
/// read), by GetParametersByPath: only those the caller may read.
pub async fn names_by_path(ssm: &Client, path: &str) -> Result<Vec<String>> {
    let found = versions_by_path(ssm, path).await?;
    Ok(found.into_iter().map(|(name, _)| name).collect())
}

/// The parameters under `path` by name, each with its version (values
/// are not read: a SecureString stays encrypted), by GetParametersByPath.
pub async fn versions_by_path(ssm: &Client, path: &str) -> Result<Vec<(String, i64)>> {
    let mut pages = ssm
        .get_parameters_by_path()
        .path(path)
        .recursive(true)
        .with_decryption(false)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.ctx("ssm:GetParametersByPath")?;
        found.extend(
            page.parameters()
                .iter()
                .filter_map(|p| Some((p.name()?.to_string(), p.version()))),
        );
    }
    Ok(found)
}

/// The names of every parameter under `path` (values are not read), by
/// DescribeParameters: it lists names the caller may not be able to read,
/// 50 a page.
pub async fn names_under(ssm: &Client, path: &str) -> Result<Vec<String>> {
    let filter = ParameterStringFilter::builder()
        .key("Path")
        .option("Recursive")
        .values(path.trim_end_matches('/'))
        .build()
        .expect("key is set");
    let mut pages = ssm
        .describe_parameters()
        .parameter_filters(filter)
        .max_results(50)
        .into_paginator()
        .send();
    let mut names = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.ctx("ssm:DescribeParameters")?;
        names.extend(
            page.parameters()
                .iter()
                .filter_map(|p| p.name())
                .map(str::to_string),
        );
    }
    Ok(names)
}

/// Deletes one parameter; one that is not there is done already.
pub async fn delete(ssm: &Client, name: &str) -> Result<()> {
    match ssm.delete_parameter().name(name).send().await {
        Ok(_) => Ok(()),
        Err(SdkError::ServiceError(e)) if e.err().is_parameter_not_found() => Ok(()),
        Err(e) => Err(crate::aws::error("ssm:DeleteParameter", e).into()),
    }
}

/// Deletes `names`, 10 a request. Names that are already gone come back as
/// InvalidParameters in a successful answer: nothing to do for them.
pub async fn delete_many(ssm: &Client, names: &[String]) -> Result<()> {
    for chunk in names.chunks(NAMES_PER_REQUEST) {
        let deleted = ssm
            .delete_parameters()
            .set_names(Some(chunk.to_vec()))
            .send()
            .await;
        ok_if("ssm:DeleteParameters", deleted, &[])?;
    }
    Ok(())
}

/// A shell command for Run Command's `AWS-RunShellScript` document.
pub struct Command<'a> {
    pub instance_id: &'a str,
    pub comment: String,
    /// How long SSM may take to hand the command to the agent.
    pub delivery_timeout_seconds: i32,
    pub commands: Vec<String>,
    /// The script's own limit on the box.
    pub execution_timeout_seconds: u64,
}

const SHELL_DOCUMENT: &str = "AWS-RunShellScript";

/// A command SSM took.
pub struct Sent {
    pub command_id: String,
    /// When SSM took it, by AWS's clock (the listing filters on it).
    pub requested_at: Option<time::OffsetDateTime>,
}

/// Sends the command; `None` when SSM answered without a command id.
pub async fn send_command(ssm: &Client, command: Command<'_>) -> Result<Option<Sent>> {
    let sent = ssm
        .send_command()
        .document_name(SHELL_DOCUMENT)
        .instance_ids(command.instance_id)
        .comment(command.comment)
        .timeout_seconds(command.delivery_timeout_seconds)
        .parameters("commands", command.commands)
        .parameters(
            "executionTimeout",
            vec![command.execution_timeout_seconds.to_string()],
        )
        .send()
        .await
        .ctx("ssm:SendCommand")?;
    let Some(command) = sent.command() else {
        return Ok(None);
    };
    Ok(command.command_id().map(|id| Sent {
        command_id: id.to_string(),
        requested_at: command
            .requested_date_time()
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.secs()).ok()),
    }))
}

/// Stops a command on an instance.
pub async fn cancel_command(
    ssm: &Client,
    command_id: &str,
    instance_id: &str,
) -> std::result::Result<(), AwsError> {
    ssm.cancel_command()
        .command_id(command_id)
        .instance_ids(instance_id)
        .send()
        .await
        .ctx("ssm:CancelCommand")?;
    Ok(())
}

/// Where a command stands on one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub status: String,
    pub stdout: String,
    pub stderr: String,
    /// -1 when the script never got to exit.
    pub response_code: i32,
}

/// The command's invocation on the instance; `None` while it does not
/// exist yet (right after SendCommand).
pub async fn invocation(
    ssm: &Client,
    command_id: &str,
    instance_id: &str,
) -> Result<Option<Invocation>> {
    let answer = ssm
        .get_command_invocation()
        .command_id(command_id)
        .instance_id(instance_id)
        .send()
        .await;
    let invocation = match answer {
        Ok(invocation) => invocation,
        Err(SdkError::ServiceError(e)) if e.err().is_invocation_does_not_exist() => {
            return Ok(None)
        }
        Err(e) => return Err(crate::aws::error("ssm:GetCommandInvocation", e).into()),
    };
    Ok(Some(Invocation {
        status: invocation
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        stdout: invocation
            .standard_output_content()
            .unwrap_or_default()
            .to_string(),
        stderr: invocation
            .standard_error_content()
            .unwrap_or_default()
            .to_string(),
        response_code: invocation.response_code(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::replay::{self, answers, bodies, operations};
    use aws_smithy_http_client::test_util::StaticReplayClient;

    fn client(replay: &StaticReplayClient) -> Client {
        replay::ssm_client(replay)
    }

    fn parameter(overwrite: bool) -> Parameter<'static> {
        Parameter {
            name: "/glbox/t/root-password",
            description: "glbox t: initial GitLab root password".into(),
            kind: ParameterType::SecureString,
            value: "secret",
            overwrite,
            tags: if overwrite {
                Vec::new()
            } else {
                vec![("glbox:deployment".into(), "t".into())]
            },
        }
    }

    const EXISTS: (u16, &str) = (
        400,
        r#"{"__type":"ParameterAlreadyExists","message":"The parameter already exists."}"#,
    );

    #[tokio::test]
    async fn versions_by_path_reads_every_page_without_decrypting() {
        let replay = answers(&[
            (
                200,
                r#"{"Parameters":[{"Name":"/glbox/t/secrets/a","Type":"SecureString","Version":3}],"NextToken":"n"}"#,
            ),
            (
                200,
                r#"{"Parameters":[{"Name":"/glbox/t/secrets/b","Type":"SecureString","Version":1}]}"#,
            ),
        ]);
        let found = versions_by_path(&client(&replay), "/glbox/t/secrets/")
            .await
            .unwrap();
        assert_eq!(
            found,
            [
                ("/glbox/t/secrets/a".to_string(), 3),
                ("/glbox/t/secrets/b".to_string(), 1)
            ]
        );
        assert_eq!(operations(&replay).len(), 2);
        assert!(bodies(&replay)[0].contains(r#""WithDecryption":false"#));
    }

    #[tokio::test]
    async fn a_put_without_overwrite_that_finds_the_parameter_leaves_it() {
        let replay = answers(&[EXISTS]);
        let put = put(&client(&replay), &parameter(false)).await.unwrap();
        assert_eq!(put, Put::AlreadyExists);
        assert_eq!(operations(&replay), ["AmazonSSM.PutParameter"]);
        let body = &bodies(&replay)[0];
        assert!(body.contains(r#""Overwrite":false"#), "{body}");
        assert!(
            body.contains(r#""Key":"glbox:deployment""#),
            "tags go with a create: {body}"
        );
    }

    #[tokio::test]
    async fn a_put_with_overwrite_writes_without_tags_and_fails_on_any_refusal() {
        let replay = answers(&[(200, r#"{"Version":2,"Tier":"Standard"}"#), EXISTS]);
        let ssm = client(&replay);
        assert_eq!(put(&ssm, &parameter(true)).await.unwrap(), Put::Written);
        let body = &bodies(&replay)[0];
        assert!(
            body.contains(r#""Overwrite":true"#) && !body.contains("Tags"),
            "{body}"
        );
        let refused = put(&ssm, &parameter(true)).await.unwrap_err().to_string();
        assert!(refused.contains("ssm:PutParameter"), "{refused}");
    }

    fn names(count: usize) -> Vec<String> {
        (0..count).map(|i| format!("/glbox/t/p{i}")).collect()
    }

    #[tokio::test]
    async fn delete_many_sends_one_request_per_ten_names() {
        let deleted = (200, r#"{"DeletedParameters":[],"InvalidParameters":[]}"#);
        let replay = answers(&[deleted, deleted, deleted]);
        let ssm = client(&replay);
        delete_many(&ssm, &names(23)).await.unwrap();
        let bodies = bodies(&replay);
        assert_eq!(operations(&replay), ["AmazonSSM.DeleteParameters"; 3]);
        let sizes: Vec<usize> = bodies
            .iter()
            .map(|b| b.matches("/glbox/t/p").count())
            .collect();
        assert_eq!(sizes, [10, 10, 3]);
        delete_many(&ssm, &[]).await.unwrap();
        assert_eq!(
            replay.actual_requests().count(),
            3,
            "nothing to delete, no call"
        );
    }

    #[tokio::test]
    async fn get_many_reads_ten_names_a_request_and_skips_missing_ones() {
        let replay = answers(&[
            (
                200,
                r#"{"Parameters":[{"Name":"/glbox/t/p0","Value":"a"}],"InvalidParameters":["/glbox/t/p1"]}"#,
            ),
            (
                200,
                r#"{"Parameters":[{"Name":"/glbox/t/p10","Value":"b"}],"InvalidParameters":[]}"#,
            ),
        ]);
        let values = get_many(&client(&replay), &names(11), true).await.unwrap();
        assert_eq!(
            values,
            [
                ("/glbox/t/p0".to_string(), "a".to_string()),
                ("/glbox/t/p10".to_string(), "b".to_string())
            ]
        );
        assert_eq!(operations(&replay), ["AmazonSSM.GetParameters"; 2]);
    }

    #[tokio::test]
    async fn listing_under_a_path_follows_next_token() {
        let replay = answers(&[
            (
                200,
                r#"{"Parameters":[{"Name":"/glbox/t/a"}],"NextToken":"page-2"}"#,
            ),
            (200, r#"{"Parameters":[{"Name":"/glbox/t/b"}]}"#),
        ]);
        let names = names_by_path(&client(&replay), "/glbox/t/").await.unwrap();
        assert_eq!(names, ["/glbox/t/a", "/glbox/t/b"]);
        let bodies = bodies(&replay);
        assert!(!bodies[0].contains("NextToken"), "{}", bodies[0]);
        assert!(
            bodies[1].contains(r#""NextToken":"page-2""#),
            "{}",
            bodies[1]
        );
        assert!(
            bodies[0].contains(r#""Recursive":true"#)
                && bodies[0].contains(r#""WithDecryption":false"#)
        );
    }

    #[tokio::test]
    async fn describing_under_a_path_follows_next_token() {
        let replay = answers(&[
            (
                200,
                r#"{"Parameters":[{"Name":"/glbox/x/a"}],"NextToken":"n"}"#,
            ),
            (200, r#"{"Parameters":[{"Name":"/glbox/y/b"}]}"#),
        ]);
        let names = names_under(&client(&replay), "/glbox").await.unwrap();
        assert_eq!(names, ["/glbox/x/a", "/glbox/y/b"]);
        assert_eq!(operations(&replay), ["AmazonSSM.DescribeParameters"; 2]);
        assert!(bodies(&replay)[1].contains(r#""NextToken":"n""#));
    }

    #[tokio::test]
    async fn a_missing_parameter_is_none_to_find_and_done_to_delete() {
        let missing = (
            400,
            r#"{"__type":"ParameterNotFound","message":"not found"}"#,
        );
        let replay = answers(&[missing, missing, missing]);
        let ssm = client(&replay);
        assert_eq!(find(&ssm, "/glbox/t/lease", false).await.unwrap(), None);
        assert!(
            !bodies(&replay)[0].contains("WithDecryption"),
            "as before: not sent"
        );
        delete(&ssm, "/glbox/t/smtp-key").await.unwrap();
        let refused = get(&ssm, "/glbox/t/root-password", true).await.unwrap_err();
        assert!(
            refused.to_string().contains("ssm:GetParameter"),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn an_invocation_not_there_yet_is_none() {
        let replay = answers(&[
            (400, r#"{"__type":"InvocationDoesNotExist","message":""}"#),
            (
                200,
                r#"{"Status":"Success","StandardOutputContent":"out","StandardErrorContent":"err","ResponseCode":0}"#,
            ),
        ]);
        let ssm = client(&replay);
        assert_eq!(invocation(&ssm, "c", "i-1").await.unwrap(), None);
        let done = invocation(&ssm, "c", "i-1").await.unwrap().unwrap();
        assert_eq!((done.status.as_str(), done.response_code), ("Success", 0));
        assert_eq!((done.stdout.as_str(), done.stderr.as_str()), ("out", "err"));
    }
}
