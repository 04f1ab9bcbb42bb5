//! TriggerAuthentication → auth params: every reference resolves or fails by name.

use model::keda::TriggerAuthentication;
use model::manifest::parse_documents;
use scalers::ResolvedAuth;

fn auth(yaml: &str) -> TriggerAuthentication {
    parse_documents(yaml).unwrap()[0].decode().unwrap()
}

#[test]
fn secret_config_map_env_and_pod_identity() {
    let ta = auth(
        "apiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata:\n  name: a\nspec:\n  podIdentity:\n    provider: aws\n    roleArn: arn:aws:iam::1:role/r\n  secretTargetRef:\n  - parameter: awsSecretAccessKey\n    name: aws\n    key: secret\n  configMapTargetRef:\n  - parameter: awsRegion\n    name: cfg\n    key: region\n  env:\n  - parameter: awsAccessKeyID\n    name: KEY_ID\n",
    );
    let secret = |n: &str, k: &str| (n == "aws" && k == "secret").then(|| "shh".to_string());
    let cm = |n: &str, k: &str| (n == "cfg" && k == "region").then(|| "eu-west-1".to_string());
    let env = |n: &str| (n == "KEY_ID").then(|| "AKID".to_string());
    let r = ResolvedAuth::resolve(&ta.spec, &secret, &cm, &env).unwrap();
    assert_eq!(r.params["awsSecretAccessKey"], "shh");
    assert_eq!(r.params["awsRegion"], "eu-west-1");
    assert_eq!(r.params["awsAccessKeyID"], "AKID");
    assert_eq!(r.pod_identity.as_deref(), Some("aws"));
    assert_eq!(r.role_arn.as_deref(), Some("arn:aws:iam::1:role/r"));

    let none = |_: &str, _: &str| None;
    let e = ResolvedAuth::resolve(&ta.spec, &none, &cm, &env).unwrap_err();
    assert!(e.to_string().contains("Secret \"aws\""), "{e}");
}

#[test]
fn seed_pod_identity_needs_no_params() {
    let ta = auth(
        "apiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata:\n  name: keda-trigger-auth-aws-credentials\n  namespace: keda-test\nspec:\n  podIdentity:\n    provider: aws-eks\n",
    );
    let r = ResolvedAuth::resolve(&ta.spec, &|_, _| None, &|_, _| None, &|_| None).unwrap();
    assert!(r.params.is_empty());
    assert_eq!(r.pod_identity.as_deref(), Some("aws-eks"));
}
