//! The legacy DynamoDB lock table of Terraform's S3 backend: its digest item
//! (`<bucket>/<key>-md5`). Terraform refuses a state whose MD5 differs from it, so a state
//! restore must rewrite it.

use aws_sdk_dynamodb::types::AttributeValue;

use super::{Bucket, explain};
use crate::error::Result;

impl Bucket {
    pub fn put_state_digest(
        &self,
        table: &str,
        endpoint: Option<&str>,
        key: &str,
        digest: &str,
    ) -> Result<()> {
        let (ak, sk, token) = super::credentials()?;
        let mut conf = aws_sdk_dynamodb::config::Builder::new()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new(
                self.endpoint.region.clone(),
            ))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                ak, sk, token, None, "pvedr",
            ))
            .timeout_config(self.endpoint.timeouts.sdk(0));
        if let Some(ep) = endpoint {
            conf = conf.endpoint_url(ep);
        }
        let db = aws_sdk_dynamodb::Client::from_conf(conf.build());
        let lock_id = format!("{}/{key}-md5", self.name);
        self.rt
            .block_on(
                db.put_item()
                    .table_name(table)
                    .item("LockID", AttributeValue::S(lock_id))
                    .item("Digest", AttributeValue::S(digest.to_string()))
                    .send(),
            )
            .map(|_| ())
            .map_err(|e| explain(&format!("DynamoDB table {table}"), e))
    }
}
