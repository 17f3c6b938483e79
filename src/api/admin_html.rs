//! The admin page: a server-rendered shell (maud) whose script talks to the admin API with
//! the token the officer pastes in. The page holds no data itself and needs no token to load;
//! its script keeps the token in `sessionStorage` and builds every table from the API's JSON
//! with DOM calls (never `innerHTML`).
//!
//! Nothing is fetched from elsewhere: one inline `<style>` and one inline `<script>`, allowed by
//! a Content-Security-Policy nonce made fresh for each response, and nothing else (no inline
//! event handlers, no `style` attributes, no other origins).

use actix_web::http::header;
use actix_web::HttpResponse;
use base64::Engine as _;
use maud::{html, Markup, PreEscaped, DOCTYPE};

/// The page's script (vanilla JS, no build step).
const SCRIPT: &str = include_str!("admin_page.js");

/// The look of the other HTML pages (`html.rs`), plus forms, state badges and the progress bar.
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:80rem;margin:1.5rem auto;padding:0 1rem;color:#222}\
a{color:#0b5cad}table{border-collapse:collapse;font-size:.9rem;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.2rem .45rem;text-align:left;vertical-align:top}\
th{background:#f4f4f4}nav{margin-bottom:1rem}code{background:#f3f3f3;padding:0 .2rem}.muted{color:#666}\
header{display:flex;justify-content:space-between;align-items:baseline;gap:1rem;flex-wrap:wrap}\
section{margin:1.5rem 0}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem}\
form{display:grid;grid-template-columns:max-content minmax(12rem,32rem);gap:.35rem .75rem;align-items:center;margin:.5rem 0;padding:.75rem;background:#fafafa;border:1px solid #e5e5e5}\
form button[type=submit]{grid-column:2;justify-self:start}fieldset{border:0;padding:0;margin:0}\
input,select,textarea,button{font:inherit}input[type=text],input[type=url],input[type=password],input[type=number],textarea,select{padding:.2rem .3rem}\
button{cursor:pointer;padding:.2rem .6rem}.forms{display:grid;grid-template-columns:repeat(auto-fit,minmax(24rem,1fr));gap:0 1.5rem}\
.num{text-align:right;font-variant-numeric:tabular-nums}.url{word-break:break-all}.message{max-width:24rem}\
[data-kind=error]{color:#b00020}[data-kind=ok]{color:#1b6e20}\
.state{display:inline-block;padding:0 .35rem;border-radius:.2rem;background:#eee;font-size:.85rem}\
.state-succeeded{background:#d3f9d8}.state-failed{background:#ffe3e3}.state-running{background:#d0ebff}\
.state-queued{background:#fff3bf}.state-cancelled,.state-unchanged{background:#e9ecef}\
progress{width:100%}.report h4{margin:.5rem 0 .2rem}.report ul{margin:.2rem 0;padding-left:1.2rem}";

/// A fresh nonce for one response: 16 random bytes, base64.
fn nonce() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The Content-Security-Policy of a page whose only script and style carry `nonce`.
fn policy(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; \
         connect-src 'self'; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

fn markup(base: &str, nonce: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width";
                meta name="referrer" content="no-referrer";
                title { "Admin – hamn" }
                link rel="icon" href="data:,";
                style nonce=(nonce) { (PreEscaped(STYLE)) }
            }
            body data-base=(base) {
                nav { a href={ (base) "/" } { "hamn" } " › admin" }
                h1 { "Publishing" }
                noscript { p { "This page needs JavaScript: it talks to the admin API (" a href={ (base) "/admin/api" } { "OpenAPI" } ")." } }

                section #login aria-labelledby="login-title" hidden {
                    h2 #login-title { "Log in" }
                    p.muted {
                        "Paste an admin API token (made with " code { "hamn tokens create" } "). It is kept in this tab only and sent with each request; closing the tab forgets it."
                    }
                    form #login-form data-testid="login-form" autocomplete="off" {
                        label for="login-token" { "Token" }
                        input #login-token type="password" name="token" data-testid="login-token" required autocomplete="off" spellcheck="false" placeholder="hamn_…";
                        button #login-submit type="submit" data-testid="login-submit" { "Log in" }
                    }
                    p #login-error role="alert" data-testid="login-error" {}
                }

                div #app hidden {
                    header {
                        p { "Logged in as " strong #whoami data-testid="whoami" {} }
                        p {
                            button #refresh-all type="button" data-testid="refresh-all" { "Reload" }
                            " "
                            button #logout type="button" data-testid="logout" { "Log out" }
                        }
                    }
                    p #status role="status" aria-live="polite" data-testid="status" {}

                    section aria-labelledby="collections-title" {
                        h2 #collections-title { "Collections" }
                        table #collections-table data-testid="collections-table" {
                            thead {
                                tr {
                                    th scope="col" { "id" }
                                    th scope="col" { "title" }
                                    th scope="col" { "features" }
                                    th scope="col" { "version" }
                                    th scope="col" { "served" }
                                    th scope="col" { "source" }
                                    th scope="col" { "last job" }
                                    th scope="col" { span.muted { "actions" } }
                                }
                            }
                            tbody #collections-body data-testid="collections-body" {}
                        }
                        datalist #collection-ids {}

                        div.forms {
                            div {
                                h3 { "New collection" }
                                form #create-form data-testid="create-form" {
                                    label for="create-id" { "Id" }
                                    input #create-id type="text" name="id" required pattern="[a-z][a-z0-9\\-]{0,47}" title="a-z, 0-9 and '-', starting with a letter, at most 48" data-testid="create-id" autocomplete="off" spellcheck="false";
                                    label for="create-title" { "Title" }
                                    input #create-title type="text" name="title" data-testid="create-title";
                                    label for="create-description" { "Description" }
                                    textarea #create-description name="description" rows="3" data-testid="create-description" {}
                                    label for="create-licence" { "Licence" }
                                    input #create-licence type="text" name="licence" data-testid="create-licence" placeholder="CC0-1.0";
                                    label for="create-publisher" { "Publisher" }
                                    input #create-publisher type="text" name="publisher" data-testid="create-publisher";
                                    button type="submit" data-testid="create-submit" { "Create" }
                                }
                                p #create-result role="status" data-testid="create-result" {}
                            }

                            div {
                                h3 { "Upload a file" }
                                form #upload-form data-testid="upload-form" {
                                    label for="upload-collection" { "Collection id" }
                                    input #upload-collection type="text" name="collection" list="collection-ids" required pattern="[a-z][a-z0-9\\-]{0,47}" data-testid="upload-collection" autocomplete="off";
                                    label for="upload-mode" { "Mode" }
                                    select #upload-mode name="mode" data-testid="upload-mode" {
                                        option value="create" { "create: a new collection" }
                                        option value="replace" selected { "replace: all features" }
                                        option value="append" { "append: add features" }
                                    }
                                    label for="upload-file" { "File" }
                                    input #upload-file type="file" name="file" required data-testid="upload-file"
                                        accept=".geojson,.json,.zip,.gpkg,.csv,.txt,.tsv,.kml,.gml,.shp,.fgb";
                                    button #upload-submit type="submit" data-testid="upload-submit" { "Upload" }
                                    label for="upload-progress" { "Sent" }
                                    div {
                                        progress #upload-progress max="100" value="0" data-testid="upload-progress" {}
                                        " "
                                        span #upload-percent data-testid="upload-percent" { "0 %" }
                                    }
                                }
                                p #upload-result role="status" data-testid="upload-result" {}
                                div #upload-job {}
                            }

                            div {
                                h3 { "Source URL" }
                                p.muted { "The collection is fetched from the URL now and again every interval (an unchanged file costs one request)." }
                                form #source-form data-testid="source-form" {
                                    label for="source-collection" { "Collection id" }
                                    input #source-collection type="text" name="collection" list="collection-ids" required data-testid="source-collection" autocomplete="off";
                                    label for="source-url" { "URL" }
                                    input #source-url type="url" name="url" required data-testid="source-url" placeholder="URL of a .geojson, .zip, .gpkg, .csv …";
                                    label for="source-protocol" { "Read as" }
                                    select #source-protocol name="protocol" data-testid="source-protocol" {
                                        option value="file" selected { "a file, downloaded whole" }
                                        option value="ogc-api-features" { "an OGC API Features collection (…/collections/{id})" }
                                    }
                                    label for="source-interval" { "Every (seconds)" }
                                    input #source-interval type="number" name="intervalSeconds" min="1" value="3600" required data-testid="source-interval";
                                    button type="submit" data-testid="source-submit" { "Save source" }
                                }
                                p #source-result role="status" data-testid="source-result" {}
                            }
                        }
                    }

                    section aria-labelledby="catalogs-title" {
                        h2 #catalogs-title { "Catalogs" }
                        p.muted { "A DCAT catalog is harvested now and every interval: each dataset with a file hamn can read becomes a collection with a source URL." }
                        table #catalogs-table data-testid="catalogs-table" {
                            thead {
                                tr {
                                    th scope="col" { "catalog" }
                                    th scope="col" { "prefix" }
                                    th scope="col" { "every (s)" }
                                    th scope="col" { "last state" }
                                    th scope="col" { "last check" }
                                    th scope="col" { "message" }
                                    th scope="col" { span.muted { "actions" } }
                                }
                            }
                            tbody #catalogs-body data-testid="catalogs-body" {}
                        }
                        form #catalog-form data-testid="catalog-form" {
                            label for="catalog-url" { "Catalog URL" }
                            input #catalog-url type="url" name="url" required data-testid="catalog-url" placeholder="URL of a DCAT catalog";
                            label for="catalog-interval" { "Every (seconds)" }
                            input #catalog-interval type="number" name="intervalSeconds" min="1" value="86400" required data-testid="catalog-interval";
                            label for="catalog-prefix" { "Id prefix" }
                            input #catalog-prefix type="text" name="prefix" data-testid="catalog-prefix" placeholder="lund-";
                            button type="submit" data-testid="catalog-submit" { "Add catalog" }
                        }
                        p #catalog-result role="status" data-testid="catalog-result" {}
                    }

                    section aria-labelledby="jobs-title" {
                        h2 #jobs-title { "Jobs" }
                        table #jobs-table data-testid="jobs-table" {
                            thead {
                                tr {
                                    th scope="col" { "state" }
                                    th scope="col" { "type" }
                                    th scope="col" { "collection" }
                                    th scope="col" { "progress" }
                                    th scope="col" { "created" }
                                    th scope="col" { "finished" }
                                    th scope="col" { "message" }
                                    th scope="col" { "report" }
                                    th scope="col" { span.muted { "actions" } }
                                }
                            }
                            tbody #jobs-body data-testid="jobs-body" {}
                        }
                    }
                }
                script nonce=(nonce) { (PreEscaped(SCRIPT)) }
            }
        }
    }
}

pub fn page(base: &str) -> HttpResponse {
    let Some(nonce) = nonce() else {
        return HttpResponse::ServiceUnavailable()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::RETRY_AFTER, "5"))
            .content_type("text/plain; charset=utf-8")
            .body("no randomness from the system for this page's nonce; try again");
    };
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, policy(&nonce)))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(markup(base, &nonce).into_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inline_script_and_style_cannot_end_early() {
        // They are inserted unescaped: a `</script` or `</style` inside would end the element.
        assert!(!SCRIPT.to_ascii_lowercase().contains("</script"));
        assert!(!SCRIPT.contains("<!--"));
        assert!(!STYLE.to_ascii_lowercase().contains("</style"));
    }

    #[test]
    fn the_script_never_puts_data_into_html() {
        for bad in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!SCRIPT.contains(bad), "the admin script uses {bad}");
        }
    }

    #[test]
    fn each_response_has_its_own_nonce_in_the_policy_and_on_both_tags() {
        let a = nonce().expect("nonce");
        let b = nonce().expect("nonce");
        assert_ne!(a, b);
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(&a)
                .expect("base64")
                .len(),
            16
        );
        let html = markup("https://example.org/geo", &a).into_string();
        assert!(html.contains(&format!("<script nonce=\"{a}\">")));
        assert!(html.contains(&format!("<style nonce=\"{a}\">")));
        assert_eq!(html.matches("<script").count(), 1);
        assert_eq!(html.matches("<style").count(), 1);
        assert!(
            !html.contains(" style=\""),
            "style attributes would need 'unsafe-inline'"
        );
        assert!(
            !html.contains(" onclick="),
            "inline handlers would need 'unsafe-inline'"
        );
        assert!(policy(&a).contains(&format!("script-src 'nonce-{a}';")));
    }

    #[test]
    fn the_base_is_escaped() {
        let html = markup("https://example.org/\"><script>x", "n").into_string();
        assert!(!html.contains("\"><script>x"));
    }
}
