//! Bucket lifecycle: the one rule pvedr manages, expiring *noncurrent* versions after N days
//! (the current version never expires), kept beside whatever rules the bucket has.

use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ExpirationStatus, LifecycleRule, LifecycleRuleFilter,
    NoncurrentVersionExpiration,
};

use super::{Bucket, status};
use crate::error::{Error, Result};

/// The id of the rule pvedr writes.
pub const NONCURRENT_RULE_ID: &str = "pvedr-noncurrent-expiration";

impl Bucket {
    /// The bucket's lifecycle rules (none when it has no configuration).
    pub fn lifecycle_rules(&self) -> Result<Vec<LifecycleRule>> {
        match self.rt.block_on(
            self.client
                .get_bucket_lifecycle_configuration()
                .bucket(&self.name)
                .send(),
        ) {
            Ok(r) => Ok(r.rules().to_vec()),
            Err(e)
                if status(&e) == Some(404)
                    || super::code(&e).is_some_and(|c| c == "NoSuchLifecycleConfiguration") =>
            {
                Ok(Vec::new())
            }
            Err(e) => Err(self.explain(&format!("reading the lifecycle of {}", self.name), e)),
        }
    }

    /// The days after which pvedr's rule expires noncurrent versions, if the rule is there
    /// and enabled.
    pub fn noncurrent_expiration_days(&self) -> Result<Option<i32>> {
        Ok(self
            .lifecycle_rules()?
            .iter()
            .find(|r| r.id() == Some(NONCURRENT_RULE_ID))
            .filter(|r| r.status() == &ExpirationStatus::Enabled)
            .and_then(|r| r.noncurrent_version_expiration())
            .and_then(|n| n.noncurrent_days()))
    }

    /// Sets pvedr's rule to `days`, keeping every other rule of the bucket.
    pub fn set_noncurrent_expiration(&self, days: i32) -> Result<()> {
        let rule = LifecycleRule::builder()
            .id(NONCURRENT_RULE_ID)
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix("").build())
            .noncurrent_version_expiration(
                NoncurrentVersionExpiration::builder()
                    .noncurrent_days(days)
                    .build(),
            )
            .build()
            .map_err(|e| Error::Other(format!("lifecycle rule: {e}")))?;
        let mut rules: Vec<LifecycleRule> = self
            .lifecycle_rules()?
            .into_iter()
            .filter(|r| r.id() != Some(NONCURRENT_RULE_ID))
            .collect();
        rules.push(rule);
        let conf = BucketLifecycleConfiguration::builder()
            .set_rules(Some(rules))
            .build()
            .map_err(|e| Error::Other(format!("lifecycle configuration: {e}")))?;
        let req = self
            .client
            .put_bucket_lifecycle_configuration()
            .bucket(&self.name)
            .lifecycle_configuration(conf)
            .send();
        self.call(&format!("setting the lifecycle of {}", self.name), req)
            .map(|_| ())
    }
}
