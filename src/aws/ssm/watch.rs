//! Run Command's state for many boxes at once. Every box of a lab waits for
//! its SSM agent and then for its commands at the same time; asked one box
//! at a time, that is a DescribeInstanceInformation and a
//! GetCommandInvocation per box per poll, which AWS throttles long before a
//! class of 200 is served. Here one read answers every box that waits: the
//! agents 50 to a DescribeInstanceInformation, the commands in one
//! ListCommandInvocations listing. A read younger than [`FRESH`] answers
//! the boxes that ask after it, so the reads do not grow with the class.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_ssm::types::{CommandFilter, CommandFilterKey, InstanceInformationStringFilter};
use aws_sdk_ssm::Client;
use tokio::sync::Mutex;

use crate::aws::{has_code, AwsResultExt};
use crate::clock::Stopwatch;
use crate::error::Result;

/// How old (on glbox's clock) a read may be and still answer a box.
const FRESH: Duration = Duration::from_secs(5);
/// DescribeInstanceInformation's `InstanceIds` filter and
/// ListCommandInvocations' page hold at most 50
/// (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstanceInformation.html,
/// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ListCommandInvocations.html).
const PER_CALL: usize = 50;
/// The listing starts a minute before the oldest command waited on was
/// taken (AWS's own time, from SendCommand's answer; the listing's times
/// are whole seconds). Without that time, this machine's clock is used,
/// with room for it to run ahead of AWS's: SigV4 allows five minutes.
const LISTING_MARGIN: time::Duration = time::Duration::minutes(1);
const CLOCK_SLACK: time::Duration = time::Duration::minutes(5);
/// Statuses after which an invocation changes no more.
const FINAL: &[&str] = &["Success", "Failed", "TimedOut", "Cancelled"];

/// What one kind of read last saw, for the keys waited on.
struct Reads<K> {
    wanted: BTreeSet<K>,
    /// From when each key waited on must be read (a command: when SSM
    /// took it).
    asked: BTreeMap<K, time::OffsetDateTime>,
    covered: BTreeSet<K>,
    seen: BTreeMap<K, String>,
    taken: Option<Stopwatch>,
}

impl<K: Ord + Clone> Reads<K> {
    fn want(&mut self, key: &K, at: time::OffsetDateTime) {
        self.wanted.insert(key.clone());
        self.asked.entry(key.clone()).or_insert(at);
    }

    /// The moment the listing must start at to hold every key waited on.
    fn since(&self) -> String {
        let oldest = self
            .asked
            .values()
            .min()
            .copied()
            .unwrap_or_else(time::OffsetDateTime::now_utc);
        (oldest - LISTING_MARGIN)
            .replace_nanosecond(0)
            .expect("0 is a valid nanosecond")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("a UTC time formats")
    }

    fn new() -> Self {
        Reads {
            wanted: BTreeSet::new(),
            asked: BTreeMap::new(),
            covered: BTreeSet::new(),
            seen: BTreeMap::new(),
            taken: None,
        }
    }

    /// Does the last read answer for `key`, and is it recent enough?
    fn answers(&self, key: &K) -> bool {
        self.covered.contains(key) && self.taken.is_some_and(|t| t.elapsed() < FRESH)
    }

    fn store(&mut self, seen: BTreeMap<K, String>) {
        self.covered = self.wanted.clone();
        self.seen = seen;
        self.taken = Some(Stopwatch::start());
    }

    /// `key`'s state; a key that reached `done` is no longer read for.
    fn answer(&mut self, key: &K, done: impl Fn(&str) -> bool) -> Option<String> {
        let state = self.seen.get(key).cloned();
        if state.as_deref().is_some_and(done) {
            self.wanted.remove(key);
            self.asked.remove(key);
        }
        state
    }
}

/// One kind of read, shared: boxes say what they wait for at once (a
/// plain lock held for an insert), then take turns at the read itself, so
/// boxes that start waiting together are covered by the first read.
struct Shared<K> {
    asking: std::sync::Mutex<Vec<(K, time::OffsetDateTime)>>,
    reads: Mutex<Reads<K>>,
}

impl<K: Ord + Clone> Shared<K> {
    fn new() -> Self {
        Shared {
            asking: std::sync::Mutex::new(Vec::new()),
            reads: Mutex::new(Reads::new()),
        }
    }

    /// `key` is waited on no more (its wait ended, whatever the outcome).
    async fn forget(&self, key: &K) {
        let mut reads = self.reads.lock().await;
        reads.wanted.remove(key);
        reads.asked.remove(key);
    }

    /// The reads, with `key` (from `at`) and every key asked for meanwhile
    /// waited on.
    async fn for_key(
        &self,
        key: &K,
        at: time::OffsetDateTime,
    ) -> tokio::sync::MutexGuard<'_, Reads<K>> {
        self.asking
            .lock()
            .expect("no panic while holding it")
            .push((key.clone(), at));
        let mut reads = self.reads.lock().await;
        let asked = std::mem::take(&mut *self.asking.lock().expect("no panic while holding it"));
        for (key, at) in asked {
            reads.want(&key, at);
        }
        reads
    }
}

/// The shared reads of one glbox run (see the module's comment).
pub struct Watch {
    ssm: Client,
    agents: Shared<String>,
    invocations: Shared<(String, String)>,
}

impl Watch {
    pub fn new(ssm: Client) -> Watch {
        Watch {
            ssm,
            agents: Shared::new(),
            invocations: Shared::new(),
        }
    }

    /// The SSM agent's ping status on the instance (`Online`, ...); `None`
    /// while the agent has not registered.
    pub async fn agent_ping(&self, instance_id: &str) -> Result<Option<String>> {
        let key = instance_id.to_string();
        let now = time::OffsetDateTime::now_utc();
        let mut reads = self.agents.for_key(&key, now).await;
        if !reads.answers(&key) {
            let seen = agents(&self.ssm, &reads.wanted).await?;
            reads.store(seen);
        }
        Ok(reads.answer(&key, |ping| ping == "Online"))
    }

    /// The wait for the instance's agent ended (Online, timed out, failed).
    pub async fn forget_agent(&self, instance_id: &str) {
        self.agents.forget(&instance_id.to_string()).await;
    }

    /// The wait for the command on the instance ended, whatever the outcome.
    pub async fn forget_command(&self, command_id: &str, instance_id: &str) {
        let key = (command_id.to_string(), instance_id.to_string());
        self.invocations.forget(&key).await;
    }

    /// The status of the command on the instance (`InProgress`,
    /// `Success`, ...); `None` while SSM does not list it yet (right after
    /// SendCommand). `requested_at` is when SSM took the command, by AWS's
    /// clock (this machine's, less [`CLOCK_SLACK`], when unknown).
    pub async fn command_status(
        &self,
        command_id: &str,
        instance_id: &str,
        requested_at: Option<time::OffsetDateTime>,
    ) -> Result<Option<String>> {
        let key = (command_id.to_string(), instance_id.to_string());
        let at = requested_at.unwrap_or_else(|| time::OffsetDateTime::now_utc() - CLOCK_SLACK);
        let mut reads = self.invocations.for_key(&key, at).await;
        if !reads.answers(&key) {
            let seen = invocations(&self.ssm, &reads.wanted, &reads.since()).await?;
            reads.store(seen);
        }
        Ok(reads.answer(&key, |status| FINAL.contains(&status)))
    }
}

/// The ping status of each registered agent among `wanted`.
async fn agents(ssm: &Client, wanted: &BTreeSet<String>) -> Result<BTreeMap<String, String>> {
    let ids: Vec<String> = wanted.iter().cloned().collect();
    let mut seen = BTreeMap::new();
    for chunk in ids.chunks(PER_CALL) {
        let filter = InstanceInformationStringFilter::builder()
            .key("InstanceIds")
            .set_values(Some(chunk.to_vec()))
            .build()
            .expect("key and values are set");
        let mut pages = ssm
            .describe_instance_information()
            .filters(filter)
            .max_results(PER_CALL as i32)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.ctx("ssm:DescribeInstanceInformation")?;
            for info in page.instance_information_list() {
                if let (Some(id), Some(ping)) = (info.instance_id(), info.ping_status()) {
                    seen.insert(id.to_string(), ping.as_str().to_string());
                }
            }
        }
    }
    Ok(seen)
}

/// The status of each invocation among `wanted`: one command's own listing
/// when only one is waited on, else every invocation since `since` (one
/// listing for all commands).
async fn invocations(
    ssm: &Client,
    wanted: &BTreeSet<(String, String)>,
    since: &str,
) -> Result<BTreeMap<(String, String), String>> {
    let commands: BTreeSet<&str> = wanted.iter().map(|(c, _)| c.as_str()).collect();
    let mut listing = ssm.list_command_invocations().max_results(PER_CALL as i32);
    listing = match commands.iter().next() {
        Some(only) if commands.len() == 1 => listing.command_id(*only),
        _ => listing.filters(
            CommandFilter::builder()
                .key(CommandFilterKey::InvokedAfter)
                .value(since)
                .build()
                .expect("key and value are set"),
        ),
    };
    let mut pages = listing.into_paginator().send();
    let mut seen = BTreeMap::new();
    // Once every invocation waited on is seen, the rest of the history
    // (other commands of the region) need not be paged through.
    while seen.len() < wanted.len() {
        let Some(page) = pages.next().await else {
            break;
        };
        let page = match page {
            // Right after SendCommand, SSM may not know the command yet.
            Err(e) if has_code(&e, "InvalidCommandId") => break,
            page => page.ctx("ssm:ListCommandInvocations")?,
        };
        for invocation in page.command_invocations() {
            if let (Some(command), Some(instance), Some(status)) = (
                invocation.command_id(),
                invocation.instance_id(),
                invocation.status(),
            ) {
                let key = (command.to_string(), instance.to_string());
                if wanted.contains(&key) {
                    seen.insert(key, status.as_str().to_string());
                }
            }
        }
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::replay::{self, answers, bodies, operations};
    use aws_smithy_http_client::test_util::StaticReplayClient;

    fn watch(replay: &StaticReplayClient) -> Watch {
        Watch::new(replay::ssm_client(replay))
    }

    #[tokio::test]
    async fn boxes_waiting_together_share_one_read_of_their_agents() {
        let replay = answers(&[
            (200, r#"{"InstanceInformationList":[]}"#),
            (
                200,
                r#"{"InstanceInformationList":[{"InstanceId":"i-2","PingStatus":"Online"}]}"#,
            ),
        ]);
        let watch = watch(&replay);
        assert_eq!(
            watch.agent_ping("i-1").await.unwrap(),
            None,
            "not registered"
        );
        // A second box: the first read did not cover it, so it reads for
        // both; the first box's next poll is then answered without a call.
        assert_eq!(
            watch.agent_ping("i-2").await.unwrap().as_deref(),
            Some("Online")
        );
        assert_eq!(watch.agent_ping("i-1").await.unwrap(), None);
        let asked = bodies(&replay);
        assert_eq!(asked.len(), 2, "{asked:?}");
        assert!(
            asked[1].contains("i-1") && asked[1].contains("i-2"),
            "{}",
            asked[1]
        );
        assert_eq!(
            operations(&replay)[1],
            "AmazonSSM.DescribeInstanceInformation"
        );
    }

    #[tokio::test]
    async fn boxes_that_start_waiting_together_need_two_reads_not_one_each() {
        let online = r#"{"InstanceInformationList":[
            {"InstanceId":"i-1","PingStatus":"Online"},
            {"InstanceId":"i-2","PingStatus":"Online"},
            {"InstanceId":"i-3","PingStatus":"Online"}]}"#;
        let replay = answers(&[(200, online), (200, online)]);
        let watch = watch(&replay);
        let (a, b, c) = tokio::join!(
            watch.agent_ping("i-1"),
            watch.agent_ping("i-2"),
            watch.agent_ping("i-3")
        );
        for ping in [a, b, c] {
            assert_eq!(ping.unwrap().as_deref(), Some("Online"));
        }
        let asked = bodies(&replay);
        assert_eq!(
            asked.len(),
            2,
            "the first read, then one for all who asked meanwhile"
        );
        assert!(
            asked[1].contains("i-2") && asked[1].contains("i-3"),
            "{}",
            asked[1]
        );
    }

    #[tokio::test]
    async fn the_commands_of_many_boxes_are_one_listing_and_one_command_is_its_own() {
        let listing = r#"{"CommandInvocations":[
            {"CommandId":"c-1","InstanceId":"i-1","Status":"InProgress"},
            {"CommandId":"c-2","InstanceId":"i-2","Status":"Success"},
            {"CommandId":"c-9","InstanceId":"i-9","Status":"Success"}],
            "NextToken":"more of the region's history"}"#;
        let replay = answers(&[(200, listing), (200, listing)]);
        let watch = watch(&replay);
        let status = |command: &'static str, instance: &'static str| {
            let watch = &watch;
            async move { watch.command_status(command, instance, None).await.unwrap() }
        };
        assert_eq!(status("c-1", "i-1").await.as_deref(), Some("InProgress"));
        assert_eq!(status("c-2", "i-2").await.as_deref(), Some("Success"));
        // c-1's read is fresh and covered it: no call.
        assert_eq!(status("c-1", "i-1").await.as_deref(), Some("InProgress"));
        let asked = bodies(&replay);
        assert_eq!(asked.len(), 2, "no next page once all waited on are seen");
        assert!(
            asked[0].contains(r#""CommandId":"c-1""#),
            "one command: its own listing: {}",
            asked[0]
        );
        assert!(
            asked[1].contains("InvokedAfter") && !asked[1].contains(r#""CommandId""#),
            "two commands: one listing since the oldest was first asked for: {}",
            asked[1]
        );
    }

    fn seen(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_fresh_read_answers_every_key_it_covered_and_no_other() {
        let mut reads = Reads::new();
        let now = time::OffsetDateTime::now_utc();
        reads.want(&"i-1".to_string(), now);
        reads.want(&"i-2".to_string(), now);
        reads.store(seen(&[("i-1", "Online")]));
        assert!(reads.answers(&"i-1".to_string()));
        assert!(reads.answers(&"i-2".to_string()), "read for, not yet seen");
        assert!(
            !reads.answers(&"i-3".to_string()),
            "asked for after the read"
        );
        tokio::time::advance(FRESH).await;
        assert!(!reads.answers(&"i-1".to_string()), "too old");
    }

    #[tokio::test]
    async fn a_wait_that_ended_is_read_for_no_more() {
        let replay = answers(&[(200, r#"{"CommandInvocations":[]}"#)]);
        let watch = watch(&replay);
        assert_eq!(
            watch.command_status("c-1", "i-1", None).await.unwrap(),
            None
        );
        watch.forget_command("c-1", "i-1").await;
        let reads = watch.invocations.reads.lock().await;
        assert!(reads.wanted.is_empty() && reads.asked.is_empty());
    }

    #[test]
    fn a_key_that_is_done_is_read_for_no_more() {
        let mut reads = Reads::new();
        for id in ["i-1", "i-2"] {
            reads.want(&id.to_string(), time::OffsetDateTime::now_utc());
        }
        reads.store(seen(&[("i-1", "Online"), ("i-2", "ConnectionLost")]));
        let online = |ping: &str| ping == "Online";
        assert_eq!(
            reads.answer(&"i-1".to_string(), online).as_deref(),
            Some("Online")
        );
        assert_eq!(
            reads.answer(&"i-2".to_string(), online).as_deref(),
            Some("ConnectionLost")
        );
        assert_eq!(reads.answer(&"i-9".to_string(), online), None);
        assert_eq!(
            reads.wanted.into_iter().collect::<Vec<_>>(),
            vec!["i-2".to_string()]
        );
        assert_eq!(
            reads.asked.into_keys().collect::<Vec<_>>(),
            vec!["i-2".to_string()],
            "the listing no longer starts at a key that is done"
        );
    }
}
