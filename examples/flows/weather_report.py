from hero_logic import flow, services


@flow(
    name="weather_report",
    inputs={"city": "string", "days": "integer?"},
    description="A forecast for one city next to two others, remembered in kv.",
    services=["weather", "kv"],
)
def weather_report(city, days):
    with flow.step("forecast", city=city) as s:
        forecast = services.weather.forecast(city=city, days=days or 3)
        s.set(days=len(forecast["days"]))
    with flow.step("compare"):
        others = services.gather(
            services.weather.forecast.request(city="Oslo", days=1),
            services.weather.forecast.request(city="Lisbon", days=1),
        )
    with flow.step("remember"):
        services.kv.set(key=f"last:{city}", value=forecast["days"][0])
    return {
        "city": city,
        "today_high_c": forecast["days"][0]["high_c"],
        "others": {o["city"]: o["days"][0]["high_c"] for o in others},
    }
