//! Live test against the lab's AD DC (Samba): the seeded account whose CN needs
//! escaping (`Smith, John #2`) is found and bound to using only DNs and filters
//! built by this crate, and filter metacharacters in a name find nothing.
//!
//! Skips when the lab is not configured (fails under CI); start it with
//! `bash tools/lab up` and run with `bash tools/lab run -- cargo test -p credwheel-dn`.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use credwheel_dn::{Dn, Filter, Rdn, escape_value, escape_value_ad};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use secrecy::ExposeSecret;

/// An LDAPS connection that verifies the DC's certificate against the lab CA.
async fn connect(ad: &credwheel_testlab::AdLab) -> Ldap {
    let settings = LdapConnSettings::new().set_config(ad.rustls_config());
    let (conn, ldap) = LdapConnAsync::with_settings(settings, &ad.url)
        .await
        .expect("LDAPS connection with a verified certificate");
    ldap3::drive!(conn);
    ldap
}

async fn search(ldap: &mut Ldap, base: &str, filter: &Filter) -> Vec<SearchEntry> {
    let (entries, _) = ldap
        .search(
            base,
            Scope::Subtree,
            filter.as_str(),
            vec!["cn", "sAMAccountName"],
        )
        .await
        .expect("search sent")
        .success()
        .expect("search succeeded");
    entries.into_iter().map(SearchEntry::construct).collect()
}

#[tokio::test]
async fn escaped_account_is_found_and_binds() {
    let Some(ad) = credwheel_testlab::ad() else {
        return;
    };
    assert_eq!(ad.escaped_cn, "Smith, John #2", "the lab's escaped account");
    let ou = Dn::parse(&ad.service_ou).expect("service OU parses");

    let mut ldap = connect(&ad).await;
    ldap.simple_bind(&ad.admin_dn, ad.admin_password.expose_secret())
        .await
        .expect("admin bind sent")
        .success()
        .expect("admin bind");

    // Look the account up by CN with a filter built by this crate.
    let by_cn = Filter::and([
        Filter::eq("objectClass", "user").unwrap(),
        Filter::eq("cn", &ad.escaped_cn).unwrap(),
    ])
    .unwrap();
    let found = search(&mut ldap, &ad.service_ou, &by_cn).await;
    assert_eq!(found.len(), 1, "exactly one entry for {by_cn}");
    let server_dn = Dn::parse(&found[0].dn).expect("the server's DN parses");
    assert_eq!(
        found[0].attrs.get("cn").map(Vec::as_slice),
        Some(&[ad.escaped_cn.clone()][..])
    );

    // The DN the server returned equals the DN we build, both ways.
    let by_escape = Dn::parse(&format!("CN={},{}", escape_value_ad(&ad.escaped_cn), ou))
        .expect("escaped DN parses");
    let by_builder = ou.child(Rdn::new("CN", &ad.escaped_cn).unwrap()).unwrap();
    assert_eq!(
        server_dn, by_escape,
        "server {} vs ours {by_escape}",
        found[0].dn
    );
    assert_eq!(server_dn, by_builder);
    assert!(server_dn.is_descendant_of(&ou));

    // Looking it up by sAMAccountName gives the same entry.
    let by_sam = Filter::eq("sAMAccountName", &ad.escaped_sam).unwrap();
    let found = search(&mut ldap, &ad.base_dn, &by_sam).await;
    assert_eq!(found.len(), 1);
    assert_eq!(Dn::parse(&found[0].dn).unwrap(), by_builder);

    // A DN inside a filter (RFC 4515 escaping of the RFC 4514 string) matches too.
    let by_dn = Filter::eq_dn("distinguishedName", &by_builder).unwrap();
    let found = search(&mut ldap, &ad.base_dn, &by_dn).await;
    assert_eq!(found.len(), 1, "{by_dn}");
    assert_eq!(Dn::parse(&found[0].dn).unwrap(), by_builder);

    // The server accepts our DN string as a search base (base scope).
    let (base_hits, _) = ldap
        .search(
            &by_escape.to_string(),
            Scope::Base,
            "(objectClass=*)",
            vec!["cn"],
        )
        .await
        .unwrap()
        .success()
        .expect("our DN names the entry");
    assert_eq!(base_hits.len(), 1);
    ldap.unbind().await.unwrap();

    // Simple bind as the account itself, with the DN this crate built.
    let mut ldap = connect(&ad).await;
    let res = ldap
        .simple_bind(&by_escape.to_string(), ad.account_password.expose_secret())
        .await
        .expect("bind sent");
    assert_eq!(
        res.rc, 0,
        "bind as {by_escape} failed: rc {} {} (has another test rotated its password?)",
        res.rc, res.text
    );
    ldap.unbind().await.unwrap();
}

#[tokio::test]
async fn filter_metacharacters_find_nothing() {
    let Some(ad) = credwheel_testlab::ad() else {
        return;
    };
    let mut ldap = connect(&ad).await;
    ldap.simple_bind(&ad.admin_dn, ad.admin_password.expose_secret())
        .await
        .unwrap()
        .success()
        .unwrap();

    // Control: the OU does hold entries with a cn (so "nothing" below means the
    // escaping worked, not that the search was broken).
    let all = search(&mut ldap, &ad.service_ou, &Filter::present("cn").unwrap()).await;
    assert!(all.len() >= 2, "the service OU has seeded entries");

    for hostile in [
        "*)(cn=*",
        "*",
        "Smith*",
        "*)(|(objectClass=*",
        "x)(!(cn=x",
        "\\2a",
    ] {
        let filter = Filter::eq("cn", hostile).unwrap();
        let hits = search(&mut ldap, &ad.service_ou, &filter).await;
        assert!(hits.is_empty(), "{filter} found {} entries", hits.len());
    }
    // And inside a compound filter, which string concatenation would have broken.
    let compound = Filter::and([
        Filter::eq("objectClass", "user").unwrap(),
        Filter::eq("sAMAccountName", "nobody*)(sAMAccountName=*").unwrap(),
    ])
    .unwrap();
    assert!(search(&mut ldap, &ad.base_dn, &compound).await.is_empty());
    ldap.unbind().await.unwrap();
}

#[tokio::test]
async fn server_accepts_ad_escaping_syntax() {
    let Some(ad) = credwheel_testlab::ad() else {
        return;
    };
    let ou = Dn::parse(&ad.service_ou).unwrap();
    let mut ldap = connect(&ad).await;
    ldap.simple_bind(&ad.admin_dn, ad.admin_password.expose_secret())
        .await
        .unwrap()
        .success()
        .unwrap();
    // Names using every rule of escape_value_ad. None of them exists, so a
    // base-scoped search must fail with noSuchObject (32): the server parsed the
    // DN. invalidDNSyntax (34) would mean it rejected our escaping.
    for name in [
        " lead and trail ",
        "#1 = one/two",
        "a,b+c;d<e>f\"g\\h",
        "line\nbreak\rreturn\ttab\u{7f}",
        "nul\0byte",
        "Lučić 日本",
    ] {
        let dn = ou.child(Rdn::new("CN", name).unwrap()).unwrap();
        let text = dn.to_string();
        assert_eq!(
            text,
            format!("CN={},{}", escape_value_ad(name), ou),
            "Display uses the AD rules"
        );
        let res = ldap
            .search(&text, Scope::Base, "(objectClass=*)", vec!["cn"])
            .await
            .unwrap();
        assert_eq!(res.1.rc, 32, "{text:?}: rc {} {}", res.1.rc, res.1.text);
    }
    // Controls: the server does check DN syntax (so the 32s above mean it parsed
    // our escapes); these DNs, which our parser rejects too, get invalidDNSyntax.
    // (Samba is laxer than RFC 4514 elsewhere: it takes `\zz`, `#0` and a
    // dangling `\` at the very end.)
    let controls = [
        format!("CN=a,,{ou}"),
        format!("=a,{ou}"),
        format!("CN=a\"b,{ou}"),
        format!("CN=a<b,{ou}"),
    ];
    for bad in &controls {
        assert!(Dn::parse(bad).is_err(), "{bad:?}");
        let res = ldap
            .search(bad, Scope::Base, "(objectClass=*)", vec!["cn"])
            .await
            .unwrap();
        assert_eq!(res.1.rc, 34, "{bad:?}: rc {} {}", res.1.rc, res.1.text);
    }

    // Why escape_value_ad exists: RFC 4514 lets '=' stand unescaped in a value,
    // and the DC rejects that; the AD form is accepted.
    let rfc = format!("CN={},{ou}", escape_value("a=b"));
    let ad_form = format!("CN={},{ou}", escape_value_ad("a=b"));
    assert_eq!(Dn::parse(&rfc).unwrap(), Dn::parse(&ad_form).unwrap());
    for (dn, want) in [(&rfc, 34), (&ad_form, 32)] {
        let res = ldap
            .search(dn, Scope::Base, "(objectClass=*)", vec!["cn"])
            .await
            .unwrap();
        assert_eq!(res.1.rc, want, "{dn:?}: rc {} {}", res.1.rc, res.1.text);
    }
    ldap.unbind().await.unwrap();
}
