//! A mock of the EC2 Query API at the HTTP boundary, in the ApiServerVerifier style: a real
//! HTTP server on 127.0.0.1:0; the test takes each request in order, checks its `Action` and
//! parameters, and answers with EC2's XML (or error document). A missing request fails the
//! test's timeout; an extra one fails [`Ec2Mock::expect_no_more`].

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot};

/// One request as EC2 received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub action: String,
    pub version: String,
    /// Every form parameter except `Action` and `Version`.
    pub params: BTreeMap<String, String>,
    pub headers: http::HeaderMap,
}

impl Received {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.params.get(k).map(String::as_str)
    }
    /// The parameter, which must be present.
    pub fn param(&self, k: &str) -> &str {
        self.get(k)
            .unwrap_or_else(|| panic!("{} has no parameter {k}: {:#?}", self.action, self.params))
    }
    /// Parameters whose key starts with `prefix`.
    pub fn with_prefix(&self, prefix: &str) -> BTreeMap<String, String> {
        self.params
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
    /// `prefix.N.suffix` values in N order (e.g. the instance types of the overrides).
    pub fn indexed(&self, prefix: &str, suffix: &str) -> Vec<String> {
        let mut out = Vec::new();
        for n in 1.. {
            match self.get(&format!("{prefix}.{n}.{suffix}")) {
                Some(v) => out.push(v.to_string()),
                None => break,
            }
        }
        out
    }
    /// The tags of `TagSpecification.N` with `ResourceType=rt`.
    pub fn tags_for(&self, rt: &str) -> BTreeMap<String, String> {
        for n in 1.. {
            match self.get(&format!("TagSpecification.{n}.ResourceType")) {
                Some(r) if r == rt => {
                    let keys = self.indexed(&format!("TagSpecification.{n}.Tag"), "Key");
                    let vals = self.indexed(&format!("TagSpecification.{n}.Tag"), "Value");
                    return keys.into_iter().zip(vals).collect();
                }
                Some(_) => continue,
                None => break,
            }
        }
        BTreeMap::new()
    }
}

type Pending = (Received, oneshot::Sender<(u16, String)>);

pub struct Ec2Mock {
    pub url: String,
    rx: mpsc::UnboundedReceiver<Pending>,
    _stop: oneshot::Sender<()>,
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => out.push(v),
                    Err(_) => out.extend_from_slice(&b[i..i + 3]),
                }
                i += 3;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Ec2Mock {
    pub async fn start() -> Ec2Mock {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = mpsc::unbounded_channel::<Pending>();
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    _ = &mut stop_rx => return,
                    a = listener.accept() => match a { Ok(a) => a, Err(_) => return },
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: http::Request<Incoming>| {
                        let tx = tx.clone();
                        async move {
                            let method = req.method().to_string();
                            let path = req.uri().path().to_string();
                            let headers = req.headers().clone();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let mut params = BTreeMap::new();
                            for pair in String::from_utf8_lossy(&body).split('&') {
                                if pair.is_empty() {
                                    continue;
                                }
                                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                                params.insert(decode(k), decode(v));
                            }
                            let action = params.remove("Action").unwrap_or_default();
                            let version = params.remove("Version").unwrap_or_default();
                            let (rtx, rrx) = oneshot::channel();
                            let _ = tx.send((
                                Received {
                                    method,
                                    path,
                                    action,
                                    version,
                                    params,
                                    headers,
                                },
                                rtx,
                            ));
                            let (status, xml) = rrx
                                .await
                                .unwrap_or((500, "test dropped the request".into()));
                            Ok::<_, Infallible>(
                                http::Response::builder()
                                    .status(status)
                                    .header("content-type", "text/xml;charset=UTF-8")
                                    .body(Full::new(Bytes::from(xml)))
                                    .expect("response"),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ec2Mock {
            url: format!("http://{addr}"),
            rx,
            _stop: stop_tx,
        }
    }

    /// Wait for the next request and answer it with `status` and `xml`.
    pub async fn next(&mut self, status: u16, xml: &str) -> Received {
        let (r, reply) = self
            .rx
            .recv()
            .await
            .expect("the mock server stopped before the expected request");
        let _ = reply.send((status, xml.to_string()));
        r
    }

    /// Wait for the next request and answer it with what `answer` says for it.
    pub async fn next_with(&mut self, answer: impl FnOnce(&Received) -> (u16, String)) -> Received {
        let (r, reply) = self
            .rx
            .recv()
            .await
            .expect("the mock server stopped before the expected request");
        let _ = reply.send(answer(&r));
        r
    }

    /// Expect the next request to be `action` (POST /, Version 2016-11-15); answer it.
    pub async fn expect(&mut self, action: &str, status: u16, xml: &str) -> Received {
        let r = self.next(status, xml).await;
        assert_eq!(
            r.action, action,
            "unexpected EC2 call; parameters: {:#?}",
            r.params
        );
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/");
        assert_eq!(r.version, "2016-11-15");
        r
    }

    /// Fail if another request arrives within `wait`.
    pub async fn expect_no_more(&mut self, wait: Duration) {
        if let Ok(Some((r, reply))) = tokio::time::timeout(wait, self.rx.recv()).await {
            let _ = reply.send((500, String::new()));
            panic!("unexpected extra EC2 call {}: {:#?}", r.action, r.params);
        }
    }
}

/// EC2's error document.
pub fn error_xml(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>5b1d7a1a-0000-4000-8000-000000000000</RequestID></Response>"
    )
}

const NS: &str = "xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"";

/// `(instance id or error code, type, zone, subnet, lifecycle)`.
pub type FleetRow<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

/// A CreateFleet answer: launched `(instance id, type, zone, subnet, lifecycle)` and
/// errors `(code, type, zone, subnet, lifecycle)`.
pub fn create_fleet_xml(launched: &[FleetRow<'_>], errors: &[FleetRow<'_>]) -> String {
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CreateFleetResponse {NS}><requestId>e5a1c2a0-1</requestId><fleetId>fleet-0f1d2c3b4a5e6d7c8</fleetId><errorSet>"
    );
    for (code, t, z, s, lc) in errors {
        x.push_str(&format!(
            "<item><errorCode>{code}</errorCode><errorMessage>We currently do not have sufficient {t} capacity in the Availability Zone you requested ({z}).</errorMessage><launchTemplateAndOverrides><launchTemplateSpecification><launchTemplateId>lt-0123456789abcdef0</launchTemplateId><version>1</version></launchTemplateSpecification><overrides><instanceType>{t}</instanceType><subnetId>{s}</subnetId><availabilityZone>{z}</availabilityZone></overrides></launchTemplateAndOverrides><lifecycle>{lc}</lifecycle></item>"
        ));
    }
    x.push_str("</errorSet><fleetInstanceSet>");
    for (id, t, z, s, lc) in launched {
        x.push_str(&format!(
            "<item><instanceIds><item>{id}</item></instanceIds><instanceType>{t}</instanceType><launchTemplateAndOverrides><launchTemplateSpecification><launchTemplateId>lt-0123456789abcdef0</launchTemplateId><version>1</version></launchTemplateSpecification><overrides><instanceType>{t}</instanceType><subnetId>{s}</subnetId><availabilityZone>{z}</availabilityZone></overrides></launchTemplateAndOverrides><lifecycle>{lc}</lifecycle><platform/></item>"
        ));
    }
    x.push_str("</fleetInstanceSet></CreateFleetResponse>");
    x
}

pub fn describe_launch_templates_xml(found: Option<(&str, &str)>) -> String {
    let items = found
        .map(|(id, name)| {
            format!(
                "<item><launchTemplateId>{id}</launchTemplateId><launchTemplateName>{name}</launchTemplateName><defaultVersionNumber>1</defaultVersionNumber><latestVersionNumber>1</latestVersionNumber></item>"
            )
        })
        .unwrap_or_default();
    format!(
        "<DescribeLaunchTemplatesResponse {NS}><requestId>r</requestId><launchTemplates>{items}</launchTemplates></DescribeLaunchTemplatesResponse>"
    )
}

pub fn create_launch_template_xml(id: &str, name: &str) -> String {
    format!(
        "<CreateLaunchTemplateResponse {NS}><requestId>r</requestId><launchTemplate><launchTemplateId>{id}</launchTemplateId><launchTemplateName>{name}</launchTemplateName><createTime>2026-11-28T21:00:00.000Z</createTime><createdBy>arn:aws:iam::123456789012:role/kedge</createdBy><defaultVersionNumber>1</defaultVersionNumber><latestVersionNumber>1</latestVersionNumber></launchTemplate></CreateLaunchTemplateResponse>"
    )
}

/// `(id, type, zone, state, lifecycle (None = on-demand), tags)` of DescribeInstances.
pub type InstanceRow<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    &'a [(&'a str, &'a str)],
);

/// DescribeInstances with these instances.
pub fn describe_instances_xml(instances: &[InstanceRow<'_>], next_token: Option<&str>) -> String {
    let mut items = String::new();
    for (id, t, z, state, lc, tags) in instances {
        let code = match *state {
            "pending" => 0,
            "running" => 16,
            "shutting-down" => 32,
            "terminated" => 48,
            "stopping" => 64,
            _ => 80,
        };
        let tagset: String = tags
            .iter()
            .map(|(k, v)| format!("<item><key>{k}</key><value>{v}</value></item>"))
            .collect();
        let lifecycle = lc
            .map(|l| format!("<instanceLifecycle>{l}</instanceLifecycle>"))
            .unwrap_or_default();
        items.push_str(&format!(
            "<item><reservationId>r-0abc</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet><item><instanceId>{id}</instanceId><imageId>ami-0amd64</imageId><instanceState><code>{code}</code><name>{state}</name></instanceState><privateDnsName>ip-10-0-0-1.ec2.internal</privateDnsName><instanceType>{t}</instanceType><launchTime>2026-11-28T21:00:00.000Z</launchTime><placement><availabilityZone>{z}</availabilityZone><tenancy>default</tenancy></placement>{lifecycle}<tagSet>{tagset}</tagSet></item></instancesSet></item>"
        ));
    }
    let token = next_token
        .map(|t| format!("<nextToken>{t}</nextToken>"))
        .unwrap_or_default();
    format!(
        "<DescribeInstancesResponse {NS}><requestId>r</requestId><reservationSet>{items}</reservationSet>{token}</DescribeInstancesResponse>"
    )
}

pub fn terminate_xml(id: &str, previous: &str, current: &str) -> String {
    format!(
        "<TerminateInstancesResponse {NS}><requestId>r</requestId><instancesSet><item><instanceId>{id}</instanceId><currentState><code>32</code><name>{current}</name></currentState><previousState><code>16</code><name>{previous}</name></previousState></item></instancesSet></TerminateInstancesResponse>"
    )
}

pub fn describe_subnets_xml(subnets: &[(&str, &str, i64)]) -> String {
    let items: String = subnets
        .iter()
        .map(|(id, z, ips)| {
            format!(
                "<item><subnetId>{id}</subnetId><subnetArn>arn:aws:ec2:us-east-1:123456789012:subnet/{id}</subnetArn><state>available</state><vpcId>vpc-1</vpcId><cidrBlock>10.0.0.0/19</cidrBlock><availableIpAddressCount>{ips}</availableIpAddressCount><availabilityZone>{z}</availabilityZone><availabilityZoneId>use1-az{}</availabilityZoneId><tagSet><item><key>karpenter.sh/discovery</key><value>demo</value></item></tagSet></item>",
                &z[z.len() - 1..]
            )
        })
        .collect();
    format!(
        "<DescribeSubnetsResponse {NS}><requestId>r</requestId><subnetSet>{items}</subnetSet></DescribeSubnetsResponse>"
    )
}

pub fn describe_security_groups_xml(groups: &[(&str, &str)]) -> String {
    let items: String = groups
        .iter()
        .map(|(id, name)| {
            format!(
                "<item><ownerId>123456789012</ownerId><groupId>{id}</groupId><groupName>{name}</groupName><groupDescription>nodes</groupDescription><vpcId>vpc-1</vpcId><ipPermissions/><ipPermissionsEgress/></item>"
            )
        })
        .collect();
    format!(
        "<DescribeSecurityGroupsResponse {NS}><requestId>r</requestId><securityGroupInfo>{items}</securityGroupInfo></DescribeSecurityGroupsResponse>"
    )
}

/// DescribeImages with `(id, name, architecture, creationDate)`.
pub fn describe_images_xml(images: &[(&str, &str, &str, &str)]) -> String {
    let items: String = images
        .iter()
        .map(|(id, name, arch, created)| {
            format!(
                "<item><imageId>{id}</imageId><imageLocation>amazon/{name}</imageLocation><imageState>available</imageState><imageOwnerId>602401143452</imageOwnerId><creationDate>{created}</creationDate><isPublic>true</isPublic><architecture>{arch}</architecture><imageType>machine</imageType><name>{name}</name><rootDeviceType>ebs</rootDeviceType><virtualizationType>hvm</virtualizationType></item>"
            )
        })
        .collect();
    format!(
        "<DescribeImagesResponse {NS}><requestId>r</requestId><imagesSet>{items}</imagesSet></DescribeImagesResponse>"
    )
}
