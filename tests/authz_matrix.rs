//! The role × command × tenant matrix (#9.3), through the HTTP router.
//!
//! Every verb of `commands/*.yaml` (so a new verb fails here until the oracle
//! below knows it), as each of nine people, in a channel of each of two
//! customers, the ops channel, a DM and a channel Watchkeeper does not know,
//! with arguments naming each customer's requests, components and playbooks.
//! Each answer is classified (done, refused, not found) and compared with an
//! oracle written here from the product rules, not from `src/auth`. Then:
//! no other customer's data in any reply, every refusal in the audit log,
//! `/wk help` listing exactly what the oracle allows, and the buttons (page,
//! playbook approval, shift swap) clicked by everyone.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use support::{Db, TestApp, example_config, monday_morning, repo_path, slack_events};
use watchkeeper::dispatch::Manifest;
use watchkeeper::ids::TenantId;

// ---------------------------------------------------------------- the people

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum R {
    Admin,
    Sre,
    Oncall,
    Support,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum T {
    Acme,
    Globex,
}

impl T {
    fn id(self) -> &'static str {
        match self {
            T::Acme => "acme",
            T::Globex => "globex",
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Who {
    Staff(&'static [R]),
    Customer(T),
    Outsider,
}

#[derive(Clone, Copy, Debug)]
struct Person {
    name: &'static str,
    user: &'static str,
    team: &'static str,
    who: Who,
}

/// Staff come from the example configuration's roles and groups; the
/// customers' workspaces are the `teams` this test configures.
const PEOPLE: &[Person] = &[
    Person {
        name: "admin",
        user: "U0LEAD",
        team: "T0STAFF",
        who: Who::Staff(&[R::Admin, R::Sre]),
    },
    Person {
        name: "sre (approver)",
        user: "U0DANA",
        team: "T0STAFF",
        who: Who::Staff(&[R::Sre]),
    },
    Person {
        name: "on-call",
        user: "U0BEN",
        team: "T0STAFF",
        who: Who::Staff(&[R::Oncall]),
    },
    Person {
        name: "support+on-call",
        user: "U0ANNA",
        team: "T0STAFF",
        who: Who::Staff(&[R::Support, R::Oncall]),
    },
    Person {
        name: "support",
        user: "U0TOM",
        team: "T0STAFF",
        who: Who::Staff(&[R::Support]),
    },
    Person {
        name: "staff, no role",
        user: "U0NEW",
        team: "T0STAFF",
        who: Who::Staff(&[]),
    },
    Person {
        name: "customer of acme",
        user: "U9ALICE",
        team: "T9ALPHA",
        who: Who::Customer(T::Acme),
    },
    Person {
        name: "customer of globex",
        user: "U9GREG",
        team: "T9BETA",
        who: Who::Customer(T::Globex),
    },
    Person {
        name: "outsider",
        user: "U9OSCAR",
        team: "T9NOBODY",
        who: Who::Outsider,
    },
];

// ---------------------------------------------------------------- the places

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Tenant(T),
    Ops,
    Dm,
    Unknown,
}

const PLACES: [Place; 5] = [
    Place::Tenant(T::Acme),
    Place::Tenant(T::Globex),
    Place::Ops,
    Place::Dm,
    Place::Unknown,
];

impl Place {
    fn channel(self, person: &Person) -> String {
        match self {
            Place::Tenant(T::Acme) => "C0ACME".into(),
            Place::Tenant(T::Globex) => "C0GLOBEX".into(),
            Place::Ops => "C0OPS".into(),
            Place::Dm => format!("D0{}", &person.user[1..]),
            Place::Unknown => "C0RANDOM".into(),
        }
    }
    fn tenant(self) -> Option<T> {
        match self {
            Place::Tenant(t) => Some(t),
            _ => None,
        }
    }
}

/// What someone is at a place, by the product's rules as this test reads
/// them: staff are staff everywhere; a member of a customer's workspace is
/// that customer in the customer's channel and a stranger anywhere else.
#[derive(Clone, Copy, Debug)]
enum Standing {
    Staff(&'static [R]),
    Customer(T),
    Stranger,
}

fn standing(person: &Person, place: Place) -> Standing {
    match person.who {
        Who::Staff(roles) => Standing::Staff(roles),
        Who::Customer(t) if place.tenant() == Some(t) => Standing::Customer(t),
        _ => Standing::Stranger,
    }
}

// ---------------------------------------------------------------- the oracle

/// Who may run a verb at all.
#[derive(Clone, Copy, Debug)]
enum Aud {
    /// Strangers too.
    Anyone,
    /// Staff (with or without a role) and customers in their channel.
    Everyone,
    /// Customers in their channel and staff holding a role.
    CustomersAndStaff,
    /// Staff holding a role.
    Staff,
}

fn audience(verb: &str) -> Aud {
    match verb {
        "help" | "whoami" => Aud::Anyone,
        "approvals" | "changes" | "playbooks" | "run" | "runs" | "status" => Aud::Everyone,
        "requests" | "reopen" | "urgent" => Aud::CustomersAndStaff,
        "escalate" | "oncall" | "postmortem" | "postmortems" | "resolve" => Aud::Staff,
        other => panic!(
            "the authorisation oracle does not know `/wk {other}` (commands/{other}.yaml): add it to tests/authz_matrix.rs"
        ),
    }
}

fn admitted(aud: Aud, s: Standing) -> bool {
    match (aud, s) {
        (Aud::Anyone, _) => true,
        (Aud::Everyone, Standing::Staff(_) | Standing::Customer(_)) => true,
        (Aud::CustomersAndStaff, Standing::Customer(_)) => true,
        (Aud::CustomersAndStaff | Aud::Staff, Standing::Staff(roles)) => !roles.is_empty(),
        _ => false,
    }
}

/// What the arguments of one case name.
#[derive(Clone, Copy, Debug)]
enum Rule {
    /// Nothing tenant-specific.
    Plain,
    /// A request of this tenant: hidden in another customer's channel.
    Request(T),
    /// A component of this tenant: hidden from the other tenant's customers.
    Component(T),
    /// Something that does not exist: "not found" for whoever may ask.
    Missing,
    /// `run <playbook>` offered only to `offered`, requested by `roles` (and
    /// that tenant's customers when `customers`).
    Run {
        offered: T,
        roles: &'static [R],
        customers: bool,
    },
    /// `runs <playbook>` of a playbook offered only to this tenant.
    RunsOf(T),
}

/// What the person should get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Allowed,
    Denied,
    /// Exists, but must read exactly like something that does not (and be
    /// audited as a denial).
    Hidden,
    /// Does not exist.
    Missing,
}

fn expect(aud: Aud, rule: Rule, s: Standing, place: Place) -> Expect {
    if !admitted(aud, s) {
        return Expect::Denied;
    }
    match rule {
        Rule::Plain => Expect::Allowed,
        Rule::Missing => Expect::Missing,
        Rule::Request(t) => match place.tenant() {
            Some(here) if here != t => Expect::Hidden,
            _ => Expect::Allowed,
        },
        Rule::Component(t) => match s {
            Standing::Customer(c) if c != t => Expect::Hidden,
            _ => Expect::Allowed,
        },
        Rule::Run {
            offered,
            roles,
            customers,
        } => {
            if place.tenant().is_some_and(|here| here != offered) {
                return Expect::Hidden;
            }
            let may = match s {
                Standing::Staff(mine) => {
                    mine.contains(&R::Admin) || mine.iter().any(|r| roles.contains(r))
                }
                Standing::Customer(c) => customers && c == offered,
                Standing::Stranger => false,
            };
            if may { Expect::Allowed } else { Expect::Denied }
        }
        Rule::RunsOf(t) => match s {
            Standing::Customer(c) if c != t => Expect::Hidden,
            _ => Expect::Allowed,
        },
    }
}

/// One command with realistic arguments, and the sentence "not found" reads
/// as for it (when it can).
struct Case {
    text: String,
    rule: Rule,
    not_found: Option<String>,
}

fn case(text: &str, rule: Rule, not_found: Option<String>) -> Case {
    Case {
        text: text.to_string(),
        rule,
        not_found,
    }
}

/// The seeded data the arguments name.
struct Seed {
    request: BTreeMap<&'static str, i64>,
}

fn cases(verb: &str, seed: &Seed) -> Vec<Case> {
    let req = |t: T| seed.request[t.id()];
    let no_request = |id: i64| Some(format!("There is no request #{id}."));
    let no_component = |c: &str| Some(format!("I know no component `{c}` here."));
    let by_request = |verb: &str, tail: &str| -> Vec<Case> {
        let mut out = Vec::new();
        for t in [T::Acme, T::Globex] {
            let id = req(t);
            out.push(case(
                &format!("{verb} #{id}{tail}"),
                Rule::Request(t),
                no_request(id),
            ));
        }
        out.push(case(
            &format!("{verb} #999{tail}"),
            Rule::Missing,
            no_request(999),
        ));
        out
    };
    let by_component = |verb: &str| -> Vec<Case> {
        vec![
            case(
                &format!("{verb} acme-checkout-api"),
                Rule::Component(T::Acme),
                no_component("acme-checkout-api"),
            ),
            case(
                &format!("{verb} globex-portal"),
                Rule::Component(T::Globex),
                no_component("globex-portal"),
            ),
            case(
                &format!("{verb} no-such-thing"),
                Rule::Missing,
                no_component("no-such-thing"),
            ),
            // Near misses: the suggestions show only what the caller may see.
            case(
                &format!("{verb} acme-checkout-ap"),
                Rule::Missing,
                no_component("acme-checkout-ap"),
            ),
            case(
                &format!("{verb} globex-portl"),
                Rule::Missing,
                no_component("globex-portl"),
            ),
        ]
    };
    match verb {
        "help" => vec![case("help", Rule::Plain, None)],
        "whoami" => vec![case("whoami", Rule::Plain, None)],
        "approvals" => vec![case("approvals", Rule::Plain, None)],
        "status" => {
            let mut out = vec![case("status", Rule::Plain, None)];
            out.extend(by_component("status"));
            out
        }
        "changes" => by_component("changes"),
        "playbooks" => vec![
            case("playbooks", Rule::Plain, None),
            case("playbooks acme-checkout-api", Rule::Plain, None),
        ],
        "run" => vec![
            case(
                "run bump-chart version=2.4.1",
                Rule::Run {
                    offered: T::Acme,
                    roles: &[R::Sre, R::Oncall],
                    customers: true,
                },
                Some(
                    "There is no playbook `bump-chart` here; `/wk playbooks` lists what you may run."
                        .into(),
                ),
            ),
            case(
                "run restart-workload component=acme-checkout-api namespace=shop deployment=checkout-api",
                Rule::Run {
                    offered: T::Acme,
                    roles: &[R::Sre, R::Oncall, R::Support],
                    customers: true,
                },
                Some(
                    "There is no playbook `restart-workload` here; `/wk playbooks` lists what you may run."
                        .into(),
                ),
            ),
            case(
                "run no-such-playbook",
                Rule::Missing,
                Some(
                    "There is no playbook `no-such-playbook` here; `/wk playbooks` lists what you may run."
                        .into(),
                ),
            ),
        ],
        "runs" => vec![
            case("runs", Rule::Plain, None),
            case("runs mine", Rule::Plain, None),
            case(
                "runs bump-chart",
                Rule::RunsOf(T::Acme),
                Some("There is no playbook `bump-chart`; write a playbook's name or mine.".into()),
            ),
            case(
                "runs no-such-playbook",
                Rule::Missing,
                Some(
                    "There is no playbook `no-such-playbook`; write a playbook's name or mine."
                        .into(),
                ),
            ),
        ],
        "requests" => vec![
            case("requests", Rule::Plain, None),
            case("requests mine", Rule::Plain, None),
        ],
        "reopen" => by_request("reopen", ""),
        "urgent" => by_request("urgent", ""),
        "escalate" => by_request("escalate", " customer is waiting"),
        "resolve" => by_request("resolve", " fixed"),
        "oncall" => vec![
            case("oncall", Rule::Plain, None),
            case("oncall me", Rule::Plain, None),
        ],
        "postmortem" => {
            let id = req(T::Acme);
            vec![case(
                &format!("postmortem #{id} Checkout is slow"),
                Rule::Plain,
                None,
            )]
        }
        "postmortems" => vec![case("postmortems", Rule::Plain, None)],
        other => {
            audience(other);
            unreachable!()
        }
    }
}

// ---------------------------------------------------------------- the run

/// The example configuration with each customer's workspace, the example
/// playbooks and a git forge in `dir`.
fn config(dir: &std::path::Path) -> String {
    let text = example_config()
        .replace(
            "    channels: [C0ACME]",
            "    channels: [C0ACME]\n    teams: [T9ALPHA]",
        )
        .replace(
            "    channels: [C0GLOBEX]",
            "    channels: [C0GLOBEX]\n    teams: [T9BETA]",
        )
        .replace(
            "paths: [../playbooks]",
            &format!("paths: [{}]", repo_path("playbooks").display()),
        )
        .replace(
            "from: gitops",
            &format!("from: {}", repo_path("examples/gitops").display()),
        );
    let text = format!(
        "{text}\nforges:\n  git:\n    path: {}\n",
        dir.join("forge").display()
    );
    text[text.find("team:").unwrap_or(0)..].to_string()
}

fn text_of(reply: &Value) -> String {
    reply["text"].as_str().unwrap_or_default().to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Got {
    Done,
    Refused,
    NotFound,
}

fn classify(text: &str, not_found: Option<&str>) -> Got {
    if text.starts_with(":no_entry:") {
        Got::Refused
    } else if not_found.is_some_and(|s| text.trim_end().starts_with(s)) {
        Got::NotFound
    } else {
        Got::Done
    }
}

/// The names and ids of `t` a reply must not show to someone who is not
/// that customer and is not in that customer's channel.
fn leaks(text: &str, typed: &str, t: T) -> bool {
    let mut text = text.to_lowercase();
    for word in typed.split_whitespace() {
        text = text.replace(&word.to_lowercase(), "");
    }
    text.contains(t.id())
}

/// The verbs a `/wk help` list shows.
fn listed(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split("`/wk ").nth(1))
        .filter_map(|rest| rest.split([' ', '`']).next().map(str::to_string))
        .collect()
}

#[derive(Default)]
struct Tally {
    cells: usize,
    allowed: usize,
    denied: usize,
    hidden: usize,
    missing: usize,
    failures: Vec<String>,
}

async fn the_matrix_holds(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let Some(app) =
        TestApp::spawn_virtual_with(db, monday_morning(), &config(dir.path()), None).await
    else {
        return;
    };
    let seed = seed(&app).await;
    let manifest = Manifest::load(&repo_path("commands")).unwrap();
    let verbs: Vec<String> = manifest.commands().map(|c| c.verb.clone()).collect();
    let started = std::time::Instant::now();
    let mut tally = Tally::default();
    let mut cells = Vec::new();
    for verb in &verbs {
        let aud = audience(verb);
        for case in cases(verb, &seed) {
            for person in PEOPLE {
                for place in PLACES {
                    let s = standing(person, place);
                    let expected = expect(aud, case.rule, s, place);
                    let channel = place.channel(person);
                    let reply = app
                        .command(person.user, person.team, &channel, &case.text)
                        .await;
                    let text = text_of(&reply);
                    let got = classify(&text, case.not_found.as_deref());
                    tally.cells += 1;
                    let want = match expected {
                        Expect::Allowed => Got::Done,
                        Expect::Denied => Got::Refused,
                        Expect::Hidden | Expect::Missing => Got::NotFound,
                    };
                    match expected {
                        Expect::Allowed => tally.allowed += 1,
                        Expect::Denied => tally.denied += 1,
                        Expect::Hidden => tally.hidden += 1,
                        Expect::Missing => tally.missing += 1,
                    }
                    let cell = format!("{} in {channel}: `/wk {}`", person.name, case.text);
                    if got != want {
                        tally.failures.push(format!(
                            "{cell}: expected {expected:?}, got {got:?}: {text}"
                        ));
                    }
                    // Whoever is not a customer's own (its customer, or in its
                    // channel) never sees that customer's names or ids.
                    for t in [T::Acme, T::Globex] {
                        let own = match s {
                            Standing::Staff(_) => true,
                            Standing::Customer(c) => c == t,
                            Standing::Stranger => false,
                        };
                        if !own && place.tenant() != Some(t) && leaks(&text, &case.text, t) {
                            tally
                                .failures
                                .push(format!("{cell}: shows customer {}'s data: {text}", t.id()));
                        }
                        // In a customer's channel, a customer never sees the other's.
                        if let Standing::Customer(c) = s
                            && c != t
                            && leaks(&text, &case.text, t)
                        {
                            tally
                                .failures
                                .push(format!("{cell}: shows customer {}'s data: {text}", t.id()));
                        }
                    }
                    cells.push((
                        person.user,
                        channel,
                        case.text.clone(),
                        verb.clone(),
                        expected,
                    ));
                }
            }
        }
    }
    let commands_took = started.elapsed();

    // Every refusal, including what reads as "not found" because it is
    // another customer's, is in the audit log as a denial; nothing allowed is.
    app.server.dispatcher().audit().flush().await;
    let audit = app.server.store().recent_audit(100_000).await.unwrap();
    let mut outcomes: BTreeMap<(String, String, String, String), Vec<String>> = BTreeMap::new();
    for e in audit {
        outcomes
            .entry((
                e.actor_user,
                e.channel.unwrap_or_default(),
                e.action,
                e.detail,
            ))
            .or_default()
            .push(e.outcome);
    }
    for (user, channel, text, verb, expected) in &cells {
        let key = (
            user.to_string(),
            channel.clone(),
            format!("command:{verb}"),
            text.clone(),
        );
        let found = outcomes.get(&key).cloned().unwrap_or_default();
        let denied = found.iter().any(|o| o == "denied");
        let ok = match expected {
            Expect::Denied | Expect::Hidden => found.len() == 1 && denied,
            Expect::Allowed | Expect::Missing => found.len() == 1 && !denied,
        };
        if !ok {
            tally.failures.push(format!(
                "{user} in {channel}: `/wk {text}`: expected {expected:?}, audited {found:?}"
            ));
        }
    }

    // `/wk help` in each place lists exactly what the oracle allows there.
    let mut help_checked = 0;
    for person in PEOPLE {
        for place in PLACES {
            let s = standing(person, place);
            let channel = place.channel(person);
            let reply = app
                .command(person.user, person.team, &channel, "help")
                .await;
            let shown = listed(&text_of(&reply));
            let allowed: BTreeSet<String> = verbs
                .iter()
                .filter(|v| admitted(audience(v), s))
                .cloned()
                .collect();
            help_checked += 1;
            if shown != allowed {
                tally.failures.push(format!(
                    "{} in {channel}: /wk help lists {shown:?}, the oracle allows {allowed:?}",
                    person.name
                ));
            }
        }
    }

    let clicks = clicks(&app, &mut tally).await;

    println!(
        "authz matrix ({db:?}): {} verbs × {} people × {} places: {} command cells \
         ({} allowed, {} denied, {} hidden as not found, {} missing), {help_checked} help lists, \
         {clicks} clicks; commands took {:.1} s; {} failures",
        verbs.len(),
        PEOPLE.len(),
        PLACES.len(),
        tally.cells,
        tally.allowed,
        tally.denied,
        tally.hidden,
        tally.missing,
        commands_took.as_secs_f64(),
        tally.failures.len()
    );
    assert!(
        tally.failures.is_empty(),
        "{} of the matrix's cells disagree with the oracle:\n{}",
        tally.failures.len(),
        tally.failures.join("\n")
    );
    app.stop().await;
}

/// One open request per customer (opened by its customer in its channel).
async fn seed(app: &TestApp) -> Seed {
    for (channel, user, team, text) in [
        ("C0ACME", "U9ALICE", "T9ALPHA", "ACME checkout returns 502s"),
        ("C0GLOBEX", "U9GREG", "T9BETA", "Globex portal logins fail"),
    ] {
        let ts = slack_events::ts_now(app, 1);
        app.deliver(&slack_events::message(channel, user, team, &ts, None, text))
            .await;
    }
    let mut request = BTreeMap::new();
    for t in [T::Acme, T::Globex] {
        let open = watchkeeper::store::support::open_requests(
            app.server.store().pool(),
            Some(&TenantId::from(t.id())),
        )
        .await
        .unwrap();
        assert_eq!(open.len(), 1, "one request of {} opened", t.id());
        request.insert(t.id(), open[0].id);
    }
    Seed { request }
}

/// A button, and who may press it (the oracle, from the product rules).
struct Button {
    action: &'static str,
    value: String,
    may: fn(&Person) -> bool,
}

fn staff_with(person: &Person, roles: &[R]) -> bool {
    matches!(person.who, Who::Staff(mine) if mine.iter().any(|r| roles.contains(r)))
}

/// Buttons: Acknowledge / Resolve of a page, Approve / Reject of a playbook
/// run requested by the on-call engineer and Confirm / Decline of a shift
/// swap, clicked by everyone in
/// every place (the cards are in the ops channel and in DMs; a click names
/// only its page or run). Returns how many clicks were checked.
async fn clicks(app: &TestApp, tally: &mut Tally) -> usize {
    // The matrix escalated both requests and requested runs; deliver the
    // pages, dry runs and approval cards.
    app.settle().await;
    let escalation = app
        .slack
        .messages_in("C0OPS")
        .iter()
        .flat_map(|m| buttons_of(&m.blocks))
        .find(|(action, _)| action == "page.ack")
        .map(|(_, value)| value)
        .expect("a page with an Acknowledge button in the ops channel");
    let mut runs = app
        .server
        .store()
        .playbook_runs(&watchkeeper::store::playbook_runs::RunFilter {
            playbook: Some("bump-chart".into()),
            requested_by: Some("U0BEN".into()),
            statuses: vec![watchkeeper::store::playbook_runs::RunStatus::AwaitingApproval],
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    runs.sort_by_key(|r| r.id);
    assert!(
        runs.len() >= 2,
        "the on-call engineer's runs await approval"
    );
    let (approve, reject) = (runs[0].id, runs[1].id);
    // A swap proposed by one ops-duty engineer to another.
    let proposed = text_of(
        &app.command("U0ANNA", "T0STAFF", "C0OPS", "oncall swap <@U0BEN>")
            .await,
    );
    // The DMs wait for Slack's per-channel limit after the pages.
    app.advance(chrono::Duration::seconds(60)).await;
    let swap = app
        .slack
        .messages()
        .iter()
        .flat_map(|m| buttons_of(&m.blocks))
        .find(|(action, _)| action == "oncall.swap.confirm")
        .map(|(_, value)| value)
        .unwrap_or_else(|| panic!("a swap with a Confirm button: {proposed}"));
    // Paged: whoever holds ops-duty now (not one of these people); the
    // escalation's own rule adds on-call, SREs and admins.
    let buttons = [
        Button {
            action: "page.ack",
            value: escalation.clone(),
            may: |p| staff_with(p, &[R::Admin, R::Sre, R::Oncall]),
        },
        Button {
            action: "page.resolve",
            value: escalation,
            may: |p| staff_with(p, &[R::Admin, R::Sre, R::Oncall, R::Support]),
        },
        // Approvers: the playbook's `sre` (admins always); never the requester.
        Button {
            action: "playbook.approve",
            value: approve.to_string(),
            may: |p| p.user != "U0BEN" && staff_with(p, &[R::Admin, R::Sre]),
        },
        // Rejecting: the approvers, and the requester withdrawing their own.
        Button {
            action: "playbook.reject",
            value: reject.to_string(),
            may: |p| p.user == "U0BEN" || staff_with(p, &[R::Admin, R::Sre]),
        },
        // Only the two engineers of a swap answer it.
        Button {
            action: "oncall.swap.confirm",
            value: swap.clone(),
            may: |p| p.user == "U0ANNA" || p.user == "U0BEN",
        },
        Button {
            action: "oncall.swap.decline",
            value: swap,
            may: |p| p.user == "U0ANNA" || p.user == "U0BEN",
        },
    ];
    let mut checked = 0;
    let mut cells = Vec::new();
    for button in &buttons {
        // The ones who may click first, so the others click on a page, run
        // or swap already decided: a refusal must not depend on (nor tell)
        // its state.
        let mut order: Vec<&Person> = PEOPLE.iter().collect();
        order.sort_by_key(|p| !(button.may)(p));
        for person in order {
            for place in PLACES {
                let channel = place.channel(person);
                let before = app.told(person.user).len();
                app.press(
                    person.user,
                    person.team,
                    &channel,
                    "1700000000.000100",
                    button.action,
                    &button.value,
                )
                .await;
                let replies = app.told(person.user);
                let text = replies.get(before).cloned().unwrap_or_default();
                checked += 1;
                let allowed = (button.may)(person);
                // A refusal is `:no_entry: <reason>`; so is the rejection's
                // own confirmation, which says what was done.
                let refused =
                    text.starts_with(":no_entry:") && !text.starts_with(":no_entry: You rejected");
                if refused == allowed || replies.len() != before + 1 {
                    tally.failures.push(format!(
                        "{} in {channel} clicks {} {}: expected {}, told {:?}",
                        person.name,
                        button.action,
                        button.value,
                        if allowed { "allowed" } else { "refused" },
                        &replies[before..]
                    ));
                }
                cells.push((person.user, channel, button.action, allowed));
            }
        }
    }
    // Every refused click is audited as a denial, every other one is not.
    app.server.dispatcher().audit().flush().await;
    let audit = app.server.store().recent_audit(100_000).await.unwrap();
    for (user, channel, action, allowed) in cells {
        let found: Vec<String> = audit
            .iter()
            .filter(|e| {
                e.actor_user == user
                    && e.channel.as_deref() == Some(channel.as_str())
                    && e.action == format!("action:{action}")
            })
            .map(|e| e.outcome.clone())
            .collect();
        let ok = found.len() == 1 && (found[0] == "denied") != allowed;
        if !ok {
            tally.failures.push(format!(
                "{user} in {channel} clicks {action}: audited {found:?}"
            ));
        }
    }
    checked
}

/// `(action_id, value)` of every button in a message's blocks.
fn buttons_of(blocks: &Value) -> Vec<(String, String)> {
    blocks
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| {
            Some((
                e["action_id"].as_str()?.to_string(),
                e["value"].as_str()?.to_string(),
            ))
        })
        .collect()
}

on_both_backends!(the_matrix_holds);
