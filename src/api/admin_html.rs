//! The admin page: a server-rendered shell (maud) whose script talks to the admin API with
//! the token the officer pastes in. The page holds no data itself.

use actix_web::HttpResponse;
use maud::{html, DOCTYPE};

pub fn page(base: &str) -> HttpResponse {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "hamn admin" }
            }
            body data-base=(base) {
                h1 { "hamn admin" }
            }
        }
    };
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}
