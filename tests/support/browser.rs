//! A browser as the portal's tests need one, without a real one: cookies
//! kept per host as a browser keeps them (set, replaced, expired), redirects
//! followed (a bounded number), forms posted with the fields their page
//! holds. It only ever sends what it was given by the pages it visited.

use std::collections::BTreeMap;
use std::sync::Mutex;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

/// A page as the browser ended on it.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub url: String,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
    /// The `Set-Cookie` headers of every answer on the way, in order.
    pub set_cookies: Vec<String>,
}

impl Page {
    /// The content of `<meta name="…" content="…">`.
    pub fn meta(&self, name: &str) -> Option<String> {
        let marker = format!("<meta name=\"{name}\" content=\"");
        let start = self.body.find(&marker)? + marker.len();
        Some(self.body[start..].split('"').next()?.to_owned())
    }

    /// The fields the form posting to `action` sends as it stands, as a
    /// browser would: its inputs with their values (radio buttons and
    /// check boxes only when checked) and the option selected in each select.
    pub fn form(&self, action: &str) -> Vec<(String, String)> {
        let marker = format!("action=\"{action}\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no form to {action} in {}", self.body));
        let form = &self.body[start..];
        let form = &form[..form.find("</form>").unwrap()];
        let mut fields: Vec<(String, String)> = form
            .split("<input")
            .skip(1)
            .map(|input| &input[..input.find('>').unwrap()])
            .filter(|input| {
                let choice =
                    input.contains("type=\"radio\"") || input.contains("type=\"checkbox\"");
                input.contains("name=\"") && (!choice || input.contains(" checked"))
            })
            .map(|input| (attribute(input, "name"), optional_attribute(input, "value")))
            .collect();
        for select in form.split("<select").skip(1) {
            let select = &select[..select.find("</select>").unwrap()];
            let chosen = select
                .split("<option")
                .skip(1)
                .find(|option| option.contains(" selected"))
                .or_else(|| select.split("<option").nth(1));
            if let Some(option) = chosen {
                fields.push((
                    attribute(select, "name"),
                    optional_attribute(option, "value"),
                ));
            }
        }
        fields
    }

    pub fn assert_problem(&self, status: u16, kind: &str) {
        assert_eq!(self.status, status, "{}: {}", self.url, self.body);
        assert_eq!(
            self.meta("problem-type").as_deref(),
            Some(format!("urn:sceau:problem:{kind}").as_str()),
            "{}",
            self.body
        );
    }
}

fn attribute(tag: &str, name: &str) -> String {
    let marker = format!("{name}=\"");
    let start = tag.find(&marker).unwrap() + marker.len();
    html_unescape(tag[start..].split('"').next().unwrap())
}

fn optional_attribute(tag: &str, name: &str) -> String {
    let marker = format!(" {name}=\"");
    tag.find(&marker)
        .map(|start| html_unescape(tag[start + marker.len()..].split('"').next().unwrap()))
        .unwrap_or_default()
}

fn html_unescape(text: &str) -> String {
    text.replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

pub struct Browser {
    http: reqwest::Client,
    /// Cookies by name: every server of these tests is on 127.0.0.1, and a
    /// browser's cookies are per host, not per port.
    jar: Mutex<BTreeMap<String, String>>,
    /// `Accept-Language`.
    pub language: &'static str,
}

impl Browser {
    pub fn new(language: &'static str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: Mutex::new(BTreeMap::new()),
            language,
        }
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().unwrap().get(name).cloned()
    }

    pub fn set_cookie(&self, name: &str, value: &str) {
        self.jar
            .lock()
            .unwrap()
            .insert(name.to_owned(), value.to_owned());
    }

    fn keep(&self, headers: &reqwest::header::HeaderMap, seen: &mut Vec<String>) {
        let mut jar = self.jar.lock().unwrap();
        for value in headers.get_all(SET_COOKIE) {
            let text = value.to_str().unwrap().to_owned();
            let (pair, attributes) = text.split_once(';').unwrap_or((&text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let attributes = attributes.to_ascii_lowercase();
            if attributes.contains("max-age=0") || attributes.contains("expires=thu, 01 jan 1970") {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_owned(), value.trim().to_owned());
            }
            seen.push(text);
        }
    }

    /// The `Cookie` header this browser sends (every server is on 127.0.0.1).
    fn cookie_header(&self) -> String {
        let jar = self.jar.lock().unwrap();
        let pairs: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.join("; ")
    }

    async fn once(
        &self,
        method: &str,
        url: &str,
        form: Option<&[(String, String)]>,
    ) -> reqwest::Response {
        let cookies = self.cookie_header();
        let mut request = self
            .http
            .request(method.parse().unwrap(), url)
            .header("accept-language", self.language)
            .header("accept", "text/html");
        if !cookies.is_empty() {
            request = request.header(COOKIE, cookies);
        }
        if let Some(form) = form {
            request = request.form(form);
        }
        request.send().await.unwrap()
    }

    /// `method url` (with `form`), then the redirects, as GETs.
    pub async fn visit(&self, method: &str, url: &str, form: Option<&[(String, String)]>) -> Page {
        let mut url = reqwest::Url::parse(url).unwrap();
        let mut response = self.once(method, url.as_str(), form).await;
        let mut seen = Vec::new();
        for _ in 0..20 {
            self.keep(response.headers(), &mut seen);
            if !response.status().is_redirection() {
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let body = response.text().await.unwrap();
                return Page {
                    status,
                    url: url.to_string(),
                    body,
                    headers,
                    set_cookies: seen,
                };
            }
            let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
            url = url.join(&location).unwrap();
            response = self.once("GET", url.as_str(), None).await;
        }
        panic!("more than 20 redirects from {url}");
    }

    pub async fn get(&self, url: &str) -> Page {
        self.visit("GET", url, None).await
    }

    /// Posts `parts` as multipart/form-data, in that order, the file parts
    /// (name, file name, bytes) after the text ones unless `file_first`,
    /// then follows the redirects.
    pub async fn upload(
        &self,
        url: &str,
        texts: &[(String, String)],
        file: (&str, &str, Vec<u8>),
        file_first: bool,
    ) -> Page {
        let file_part = reqwest::multipart::Part::bytes(file.2)
            .file_name(file.1.to_owned())
            .mime_str("application/octet-stream")
            .unwrap();
        let mut form = reqwest::multipart::Form::new();
        if file_first {
            form = form.part(file.0.to_owned(), file_part);
            for (k, v) in texts {
                form = form.text(k.clone(), v.clone());
            }
        } else {
            for (k, v) in texts {
                form = form.text(k.clone(), v.clone());
            }
            form = form.part(file.0.to_owned(), file_part);
        }
        let cookies = self.cookie_header();
        let response = self
            .http
            .post(url)
            .header(COOKIE, cookies)
            .header("accept-language", self.language)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let mut seen = Vec::new();
        self.keep(response.headers(), &mut seen);
        if response.status().is_redirection() {
            let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
            let next = reqwest::Url::parse(url).unwrap().join(&location).unwrap();
            return self.get(next.as_str()).await;
        }
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        Page {
            status,
            url: url.to_owned(),
            body: response.text().await.unwrap(),
            headers,
            set_cookies: seen,
        }
    }

    /// Posts the form of `page` that goes to `action`, with `extra` fields.
    pub async fn submit(
        &self,
        page: &Page,
        base: &str,
        action: &str,
        extra: &[(&str, &str)],
    ) -> Page {
        let mut fields = page.form(action);
        fields.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self.visit("POST", &format!("{base}{action}"), Some(&fields))
            .await
    }

    /// Signs in through the portal at `base` and the provider's login page,
    /// as `login` at `acr`, authenticated `age` seconds ago; from `next`.
    pub async fn sign_in(&self, base: &str, next: &str, login: &str, acr: &str, age: u32) -> Page {
        let login_page = self
            .get(&format!("{base}/portal/sign-in/test-id?next={next}"))
            .await;
        if !login_page.body.contains("Test identity provider") {
            // Signed in at the provider already: it answered at once.
            return login_page;
        }
        assert_eq!(login_page.status, 200, "{}", login_page.body);
        let action = {
            let start = login_page.body.find("action=\"").unwrap() + 8;
            login_page.body[start..]
                .split('"')
                .next()
                .unwrap()
                .to_owned()
        };
        let target = reqwest::Url::parse(&login_page.url)
            .unwrap()
            .join(&action)
            .unwrap();
        let fields = vec![
            ("login".to_owned(), login.to_owned()),
            ("acr".to_owned(), acr.to_owned()),
            ("age".to_owned(), age.to_string()),
        ];
        self.visit("POST", target.as_str(), Some(&fields)).await
    }
}
